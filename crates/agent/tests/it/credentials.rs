//! The credential file: 0600 in a 0700 directory, written atomically, secret kept out of logs.

use rampart_agent::Error;
use rampart_agent::credentials::Credentials;
use std::os::unix::fs::PermissionsExt;

fn sample() -> Credentials {
    Credentials {
        server: "https://rampart.example:8443".into(),
        device_id: "1e5bc9d7e413ddd7902c2932e418702b84d0cc07".into(),
        device_secret: "rpd_topsecret".into(),
        tenant_id: "tenant-1".into(),
        fingerprint: Some("ab".repeat(32)),
    }
}

#[test]
fn credentials_file_is_0600_in_a_0700_dir_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("nested");
    let creds = sample();
    creds.save(&dir).unwrap();

    let file_mode = std::fs::metadata(Credentials::path(&dir))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(file_mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert_eq!(Credentials::load(&dir).unwrap(), creds);

    // Overwritten atomically: no temporary file is left beside it.
    let mut again = sample();
    again.device_secret = "rpd_other".into();
    again.save(&dir).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["credentials.json".to_owned()]);
    assert_eq!(Credentials::load(&dir).unwrap().device_secret, "rpd_other");

    let text = std::fs::read_to_string(Credentials::path(&dir)).unwrap();
    assert!(text.contains("\"deviceId\""), "{text}");
    assert!(!format!("{again:?}").contains("rpd_other"));
    assert_eq!(
        again.authorization(),
        "Device 1e5bc9d7e413ddd7902c2932e418702b84d0cc07:rpd_other"
    );
}

#[test]
fn missing_credentials_say_not_enrolled() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Credentials::load(tmp.path()),
        Err(Error::NotEnrolled(_))
    ));
}
