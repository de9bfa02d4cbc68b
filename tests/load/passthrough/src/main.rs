//! The floor binary: the pass-through with Pingora's defaults (see the library docs).

fn main() -> Result<(), Box<dyn passthrough::Error>> {
    passthrough::run()
}
