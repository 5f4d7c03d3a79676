//! End-to-end tests over real HTTP: kube-rs clients and kubectl against servers
//! started in-process by the `testing` harness. One binary, one module per area.

mod apply;
mod bad_input;
mod common;
mod controllers;
mod events;
mod gaps;
mod harness;
mod kube_crud;
mod kubectl;
mod protobuf;
mod python_client;
mod watch;
mod workloads;
