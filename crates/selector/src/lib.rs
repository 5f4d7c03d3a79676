//! The Calico label-selector language (see `docs/architecture.md`).
