//! `plugboard plugins new`: a ready-to-build element plugin project in Rust,
//! JavaScript, Python or C, from templates shipped inside the binary.
//!
//! The templates are real files under `host/templates/`, embedded with
//! `include_str!`; `{{name}}` (the element key) and `{{title}}` (its human
//! name) in them are filled in. Every project also gets the WIT contract this
//! binary implements (`wit/element.wit`), a README (a C project also the
//! JSON reader and helpers of the bundled C element, `plugins/linear/src/`), a `build.sh` that
//! finds or installs its toolchain and writes `dist/<name>.wasm`, which
//! `plugboard plugins check` accepts unchanged, and a `test.sh` that runs
//! the sample requests in `tests/` through `plugboard plugins run` against
//! their expectations (the same files for every language: the templates
//! verify and map the same sample webhook).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The contract the generated projects implement: the newest version this
/// binary hosts.
const CONTRACT: &str = include_str!("../../wit/element.wit");

/// The README every project gets (`{{language}}` and `{{entry}}` filled in too).
const README: &str = include_str!("../templates/README.md");

/// A language a plugin project can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, with `wit-bindgen`.
    Rust,
    /// JavaScript, with componentize-js.
    #[value(alias = "javascript")]
    Js,
    /// Python, with componentize-py.
    #[value(alias = "py")]
    Python,
    /// C, with clang, wasi-libc and `wit-bindgen c`.
    C,
}

/// One file of a template: where it goes in the project, and its text.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

/// A template file embedded from `host/templates/<language>/<source>`.
macro_rules! template {
    ($lang:literal, $source:literal => $path:literal) => {
        TemplateFile {
            path: $path,
            text: include_str!(concat!("../templates/", $lang, "/", $source)),
        }
    };
    ($lang:literal, $source:literal) => {
        template!($lang, $source => $source)
    };
}

const RUST: &[TemplateFile] = &[
    template!("rust", "Cargo.toml"),
    template!("rust", "Cargo.lock"),
    template!("rust", "src/lib.rs"),
    template!("rust", "build.sh"),
    template!("rust", "gitignore" => ".gitignore"),
];

const JS: &[TemplateFile] = &[
    template!("js", "package.json"),
    template!("js", "package-lock.json"),
    template!("js", "src/index.js"),
    template!("js", "build.sh"),
    template!("js", "componentize.mjs"),
    template!("js", "gitignore" => ".gitignore"),
];

/// A file of the bundled C element's `plugins/linear/src/`, shipped as the
/// project's `src/<file>`.
macro_rules! linear_source {
    ($file:literal) => {
        TemplateFile {
            path: concat!("src/", $file),
            text: include_str!(concat!("../../plugins/linear/src/", $file)),
        }
    };
}

const C: &[TemplateFile] = &[
    template!("c", "src/element.c"),
    template!("c", "build.sh"),
    template!("c", "gitignore" => ".gitignore"),
    // The strict JSON reader and the helpers of the bundled C element, the
    // same files.
    linear_source!("json.c"),
    linear_source!("json.h"),
    linear_source!("plugboard.c"),
    linear_source!("plugboard.h"),
];

/// The sample requests, their expectations and the test command, the same
/// for every language.
const TESTS: &[TemplateFile] = &[
    template!("tests", "signed.http" => "tests/signed.http"),
    template!("tests", "signed.expected.json" => "tests/signed.expected.json"),
    template!("tests", "forged.http" => "tests/forged.http"),
    template!("tests", "forged.expected.json" => "tests/forged.expected.json"),
    template!("tests", "config.json" => "tests/config.json"),
    TemplateFile {
        path: "test.sh",
        text: include_str!("../templates/test.sh"),
    },
];

const PYTHON: &[TemplateFile] = &[
    template!("python", "pyproject.toml"),
    template!("python", "src/app.py"),
    template!("python", "build.sh"),
    template!("python", "gitignore" => ".gitignore"),
];

impl Language {
    fn files(self) -> &'static [TemplateFile] {
        match self {
            Self::Rust => RUST,
            Self::Js => JS,
            Self::Python => PYTHON,
            Self::C => C,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Js => "JavaScript",
            Self::Python => "Python",
            Self::C => "C",
        }
    }

    /// The file that holds the element's code.
    fn entry(self) -> &'static str {
        match self {
            Self::Rust => "src/lib.rs",
            Self::Js => "src/index.js",
            Self::Python => "src/app.py",
            Self::C => "src/element.c",
        }
    }
}

/// Creates the project for element `name` in `dir` (default `./<name>`) and
/// prints what to do next.
pub fn new_plugin(language: Language, name: &str, dir: Option<&Path>) -> anyhow::Result<()> {
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    create(language, name, &dir)?;
    println!(
        "created the {} element `{name}` in {}\n\nnext:\n  cd {}\n  ./build.sh\n  ./test.sh\n  plugboard plugins check dist/{name}.wasm",
        language.label(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Writes the project for element `name` into `dir`, which must be missing or
/// empty.
pub fn create(language: Language, name: &str, dir: &Path) -> anyhow::Result<()> {
    validate_name(name)?;
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !occupied,
        "{} already exists and is not empty",
        dir.display()
    );
    let title = title(name);
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{title}}", &title)
            .replace("{{language}}", language.label())
            .replace("{{entry}}", language.entry())
    };
    write(dir, "wit/element.wit", CONTRACT)?;
    write(dir, "README.md", &fill(README))?;
    for file in language.files().iter().chain(TESTS) {
        write(dir, file.path, &fill(file.text))?;
    }
    make_executable(&dir.join("build.sh"))?;
    make_executable(&dir.join("test.sh"))
}

/// Element keys name the project, the package and the element: 1-64 of
/// `a-z`, `0-9`, `-`, `_`, starting with a letter.
fn validate_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    anyhow::ensure!(
        valid,
        "element name {name:?} must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter"
    );
    Ok(())
}

/// `acme-crm` → `Acme Crm`.
fn title(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn write(dir: &Path, path: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Language; 4] = [Language::Rust, Language::Js, Language::Python, Language::C];

    #[test]
    fn names_must_be_element_keys() {
        for good in ["acme", "acme-crm", "acme_crm2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "2acme",
            "-acme",
            "acme crm",
            "acme.crm",
            &"a".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_capitalize_each_word() {
        assert_eq!(title("acme-crm_v2"), "Acme Crm V2");
        assert_eq!(title("acme"), "Acme");
    }

    #[test]
    fn every_project_is_complete_and_filled_in() {
        let root = tempfile::tempdir().unwrap();
        for language in ALL {
            let dir = root.path().join(language.label());
            create(language, "acme-crm", &dir).unwrap();
            for path in [
                "wit/element.wit",
                "README.md",
                "build.sh",
                ".gitignore",
                "test.sh",
                "tests/signed.http",
                "tests/signed.expected.json",
                language.entry(),
            ] {
                assert!(dir.join(path).is_file(), "{language:?}: {path}");
            }
            for file in language.files().iter().chain(TESTS) {
                let text = std::fs::read_to_string(dir.join(file.path)).unwrap();
                assert!(
                    !text.contains("{{"),
                    "{language:?}: {} keeps a placeholder",
                    file.path
                );
            }
            let entry = std::fs::read_to_string(dir.join(language.entry())).unwrap();
            assert!(entry.contains("acme-crm.webhook.secret"), "{language:?}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(dir.join("build.sh"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o111, 0o111, "{language:?}: build.sh is executable");
            }
        }
    }

    /// The C template pins the wit-bindgen CLI that the Rust guests' crate
    /// matches, so C and Rust read the contract with one generator version.
    #[test]
    fn the_c_template_pins_the_rust_guests_wit_bindgen() {
        let pinned = |lock: &str| {
            let at = lock.find("name = \"wit-bindgen\"\nversion = \"").unwrap();
            let rest = &lock[at + "name = \"wit-bindgen\"\nversion = \"".len()..];
            rest[..rest.find('"').unwrap()].to_string()
        };
        let rust = pinned(include_str!("../templates/rust/Cargo.lock"));
        assert_eq!(rust, pinned(include_str!("../../plugins/Cargo.lock")));
        let c_build = C.iter().find(|f| f.path == "build.sh").unwrap().text;
        assert!(
            c_build.contains(&format!("\nWIT_BINDGEN_VERSION={rust}\n")),
            "host/templates/c/build.sh must pin wit-bindgen {rust}"
        );
    }

    #[test]
    fn refuses_a_folder_that_is_not_empty() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
        let err = create(Language::Js, "acme", root.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
