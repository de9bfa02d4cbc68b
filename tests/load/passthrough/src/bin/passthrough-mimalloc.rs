//! The floor with BridgeCore's global allocator (mimalloc), for comparison.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn passthrough::Error>> {
    passthrough::run()
}
