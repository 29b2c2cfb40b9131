mod manifest;
mod validate;
fn main() {}
