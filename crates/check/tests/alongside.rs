//! `check::load_and_check_alongside`: work that runs on the loaded inventory while the rules do
//! (`gen` renders while it checks). Its result comes back with the report; it never runs on an
//! inventory that cannot be loaded; a panic in it is swallowed only when the rules found errors.

const CLEAN: &str = r#"
[fleet]
state_version = "26.05"

[ssh]
root_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf root@workstation"]

[users.carol]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsayYpasLjJnFWkbxfFaMF7D0BbAlqNvwqypj1yjbxK carol@example"]

[hosts.pi]
board = "rpi4"
address = "10.0.0.2"
users = ["carol"]
"#;

fn check_with<T: Send>(
    text: &str,
    work: impl FnOnce(&model::Loaded) -> T + Send,
) -> (check::Report, Option<(model::Loaded, Option<T>)>) {
    check::load_and_check_alongside(text.as_bytes(), "fleet.toml", None, Some(work))
}

#[test]
fn the_work_sees_the_loaded_inventory_and_comes_back_with_the_report() {
    let (report, loaded) = check_with(CLEAN, |l| l.fleet.hosts.len());
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let (_, hosts) = loaded.expect("loaded");
    assert_eq!(hosts, Some(1));
}

#[test]
fn an_inventory_that_cannot_be_loaded_runs_no_work() {
    let ran = std::sync::atomic::AtomicBool::new(false);
    let (report, loaded) = check_with("[fleet\n", |_| {
        ran.store(true, std::sync::atomic::Ordering::SeqCst)
    });
    assert!(report.has_errors());
    assert!(loaded.is_none());
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_panic_on_an_inventory_with_errors_gives_no_result_and_the_errors() {
    let broken = CLEAN.replace("users = [\"carol\"]", "users = [\"nobody\"]");
    let (report, loaded) = check_with(&broken, |_| -> usize { panic!("work failed") });
    assert!(report.has_errors(), "the unknown user is an error");
    let (_, result) = loaded.expect("loaded");
    assert!(result.is_none());
}

#[test]
fn a_panic_on_a_clean_inventory_goes_on() {
    let caught =
        std::panic::catch_unwind(|| check_with(CLEAN, |_| -> usize { panic!("work failed") }));
    let panic = caught.expect_err("the panic goes on");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"work failed"));
}
