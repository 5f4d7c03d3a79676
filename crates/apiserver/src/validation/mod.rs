//! Per-kind validation and defaulting of built-in types, as kube-apiserver applies them.
