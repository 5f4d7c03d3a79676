mod cluster;
mod propagate;
mod selector;
mod shards;
