//! Live response: how `Args` become words (the sessions themselves run against the real server
//! in the `rampart` crate's agent tests).

use rampart_agent::commands::live_response::split_args;

#[test]
fn args_split_as_a_shell_would_without_expansion() {
    let words = |s: &str| split_args(s).unwrap();
    assert_eq!(words(""), Vec::<String>::new());
    assert_eq!(words("  -v   --out x  "), ["-v", "--out", "x"]);
    assert_eq!(words("'a b' \"c d\" e\\ f"), ["a b", "c d", "e f"]);
    assert_eq!(words(r#""say \"hi\" \\ \n""#), [r#"say "hi" \ \n"#]);
    assert_eq!(words("''"), [""]);
    assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
    // Nothing is expanded: these reach the script as written.
    assert_eq!(words("$HOME * `id` $(id)"), ["$HOME", "*", "`id`", "$(id)"]);
    for bad in ["'open", "\"open", "trailing\\", "nul\0"] {
        let e = split_args(bad).unwrap_err();
        assert!(e.starts_with("Args:"), "{e}");
    }
}
