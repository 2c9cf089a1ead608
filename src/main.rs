//! The `graphrun` command line.

mod cli;

fn main() {
    // Die quietly on a closed pipe (`graphrun inspect ... | head`) like other Unix tools,
    // instead of panicking inside println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(cli::main());
}
