"""fedmesh's stand-in for kubernetes-client/python's `kubernetes.e2e_test.base`.

The client's end-to-end tests import `get_e2e_configuration` from that module,
which is not published to PyPI; this one points them at the embedded API
server named by $KUBECONFIG.
"""
import os

from kubernetes.client import Configuration
from kubernetes.config import load_kube_config


def get_e2e_configuration():
    config = Configuration()
    load_kube_config(config_file=os.environ["KUBECONFIG"], client_configuration=config)
    return config
