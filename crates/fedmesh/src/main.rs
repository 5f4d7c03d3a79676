//! The `fedmesh` binary: parses arguments and hands over to the library.

// The controller keeps a million-endpoint heap that churns; glibc's malloc
// spends most of an update searching fragmented bins there (see the
// Federation section of docs/benchmarks.md), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fedmesh::run()
}
