//! The tests against a real Ray cluster, in a binary of their own so that
//! `tests/ray/run-in-netns.sh` runs them (and only them) next to the head
//! node it starts; without a cluster they skip (see `common::ray`).
//! `jobs` runs batches, runs and the `jobs` commands on the single head;
//! `nodes` adds worker nodes to it and removes them. A `nodes` test
//! changes the cluster, so it runs alone: the `jobs` tests share the
//! cluster with each other and wait while a `nodes` test holds it
//! (`common::ray::shared_cluster` / `exclusive_cluster`).

#[path = "../common/mod.rs"]
mod common;

mod jobs;
mod nodes;
