//! Build script. Kernel generation (expanding `kernels/` templates into the embedded
//! catalogue) is added with the GPU backend; for now it only declares its inputs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
