"""fedmesh's stand-in for `kubernetes.aio.e2e_test.base` (see e2e_base_sync.py)."""
import asyncio
import os

from kubernetes.aio.client import Configuration
from kubernetes.aio.config import load_kube_config


def get_e2e_configuration():
    config = Configuration()
    asyncio.run(load_kube_config(config_file=os.environ["KUBECONFIG"], client_configuration=config))
    return config
