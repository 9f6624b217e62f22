// `sqlx::migrate!` embeds migrations/ at compile time; on stable Rust the macro cannot tell
// cargo to watch that folder, so a new migration would not rebuild this crate without this.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
