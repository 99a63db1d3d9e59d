//! The engine touches the operating system only in its real backend module: every other file
//! in `src/` reaches files and time through the `Fs` and `Clock` traits, so the simulator sees
//! every I/O and every clock reading.

const FORBIDDEN: &[&str] = &[
    "std::fs",
    "SystemTime",
    "Instant",
    "thread::sleep",
    "thread_rng",
    "rand::random",
    "getrandom",
    "HashMap",
    "HashSet",
];
const REAL_BACKEND: &str = "src/env/std_fs.rs";

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn only_the_real_backend_touches_the_os() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut hits = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == REAL_BACKEND {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in FORBIDDEN {
                if code.contains(pat) {
                    hits.push(format!("{rel}:{}: {pat}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "OS access outside {REAL_BACKEND}:\n{}",
        hits.join("\n")
    );
    // The backend itself does use them, so the check would see them if they moved.
    let backend = std::fs::read_to_string(root.join(REAL_BACKEND)).unwrap();
    assert!(backend.contains("std::fs") && backend.contains("SystemTime"));
}
