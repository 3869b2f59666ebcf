//! The token service: client credentials as Entra ID does them.

use crate::harness::{Server, assert_mde_error, backends};
use base64::Engine;

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn post_form(s: &Server, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let resp = s
        .http
        .post(format!("{}{path}", s.url))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn client_credentials_tokens_v1_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start(&b);
        let app = b.create_app(None, "Alert.Read.All,Machine.Isolate");
        let scope = "https://api.securitycenter.microsoft.com/.default";
        let (status, v2) = post_form(
            &s,
            &format!("/{}/oauth2/v2.0/token", app.tenant),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(status, 200, "{}: {v2}", b.name);
        assert_eq!(v2["token_type"], "Bearer");
        assert_eq!(v2["expires_in"], 3599);
        assert_eq!(v2["ext_expires_in"], 3599);
        let c = claims(v2["access_token"].as_str().unwrap());
        assert_eq!(c["aud"], "https://api.securitycenter.microsoft.com");
        assert_eq!(c["tid"], app.tenant);
        assert_eq!(c["appid"], app.client_id);
        assert_eq!(c["ver"], "2.0");
        assert_eq!(
            c["roles"],
            serde_json::json!(["Alert.Read.All", "Machine.Isolate"])
        );
        assert_eq!(c["iss"], format!("{}/{}/v2.0", s.url, app.tenant));
        assert_eq!(
            c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
            3599
        );

        // v1 form with `resource`.
        let (status, v1) = post_form(
            &s,
            &format!("/{}/oauth2/token", app.tenant),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
                ("resource", &s.url),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v1}");
        let c1 = claims(v1["access_token"].as_str().unwrap());
        assert_eq!(c1["ver"], "1.0");
        assert_eq!(c1["aud"], s.url);

        // The tokens work, and their signature verifies with the published JWKS.
        let (st, _) = s.get("/api/alerts", v1["access_token"].as_str()).await;
        assert_eq!(st, 200);
        let (st, jwks) = s
            .get(&format!("/{}/discovery/v2.0/keys", app.tenant), None)
            .await;
        assert_eq!(st, 200);
        let header = jsonwebtoken::decode_header(v2["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header.kid.clone().unwrap())
            .expect("kid published");
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap(),
        )
        .unwrap();
        let mut val = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        val.set_audience(&["https://api.securitycenter.microsoft.com"]);
        jsonwebtoken::decode::<serde_json::Value>(v2["access_token"].as_str().unwrap(), &key, &val)
            .expect("signature verifies");

        let (st, oidc) = s
            .get(
                &format!("/{}/v2.0/.well-known/openid-configuration", app.tenant),
                None,
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(oidc["issuer"], c["iss"]);
        assert_eq!(
            oidc["token_endpoint"],
            format!("{}/{}/oauth2/v2.0/token", s.url, app.tenant)
        );
        assert_eq!(
            oidc["jwks_uri"],
            format!("{}/{}/discovery/v2.0/keys", s.url, app.tenant)
        );
    }
}

#[tokio::test]
async fn bad_credentials_never_say_which_part_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let app = b.create_app(None, "Alert.Read.All");
    let other_tenant = b.create_tenant("Other");
    let path = |t: &str| format!("/{t}/oauth2/v2.0/token");
    let scope = format!("{}/.default", s.url);
    let cases: Vec<(String, String, String)> = vec![
        (
            app.tenant.clone(),
            app.client_id.clone(),
            "wrong-secret".into(),
        ),
        (
            app.tenant.clone(),
            uuid::Uuid::new_v4().to_string(),
            app.secret.clone(),
        ),
        (app.tenant.clone(), "not-a-guid".into(), app.secret.clone()),
        (
            other_tenant.clone(),
            app.client_id.clone(),
            app.secret.clone(),
        ),
    ];
    let mut descriptions = Vec::new();
    for (tenant, id, secret) in cases {
        let (status, body) = post_form(
            &s,
            &path(&tenant),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", &scope),
            ],
        )
        .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        descriptions.push(body["error_description"].clone());
    }
    assert!(
        descriptions.windows(2).all(|w| w[0] == w[1]),
        "{descriptions:?}"
    );

    let (status, body) = post_form(
        &s,
        &path(&app.tenant),
        &[
            ("grant_type", "password"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = post_form(
        &s,
        &path(&app.tenant),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("scope", "https://evil.example/.default"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_resource"))
    );
    let (status, body) = post_form(
        &s,
        &path(&app.tenant),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) =
        post_form(&s, &path("nope"), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 400, "{body}");

    // Basic authentication of the client works as well.
    let resp = s
        .http
        .post(format!("{}{}", s.url, path(&app.tenant)))
        .basic_auth(&app.client_id, Some(&app.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", &scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn tokens_are_refused_when_tampered_expired_or_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let token = s.token_with("Alert.Read.All").await;
    let (st, body) = s.get("/api/alerts", Some(&token)).await;
    assert_eq!(st, 200, "{body}");

    // Flip a claim without re-signing.
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims(&token);
    c["roles"] = serde_json::json!(["Alert.Read.All", "Machine.Isolate"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    let (st, body) = s.get("/api/alerts", Some(&forged)).await;
    assert_eq!(st, 401);
    assert_mde_error(&body, "Unauthorized");

    // A token signed with an HMAC "none"-style trick is refused.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    assert_eq!(s.get("/api/alerts", Some(&hs)).await.0, 401);
    assert_eq!(s.get("/api/alerts", Some("garbage")).await.0, 401);

    // A token of another Rampart server (another key) is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let b2 = &backends(dir2.path())[0];
    let s2 = Server::start(b2);
    let foreign = s2.token_with("Alert.Read.All").await;
    assert_eq!(s.get("/api/alerts", Some(&foreign)).await.0, 401);
}

#[tokio::test]
async fn rotated_keys_sign_new_tokens_and_old_tokens_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let app = b.create_app(None, "Alert.Read.All");
    let old = s.token(&app).await;
    b.cli(&["keys", "rotate"]);
    let new = s.token(&app).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&old), kid(&new), "the rotated key signs new tokens");
    assert_eq!(s.get("/api/alerts", Some(&old)).await.0, 200);
    assert_eq!(s.get("/api/alerts", Some(&new)).await.0, 200);
    let (_, jwks) = s
        .get(&format!("/{}/discovery/v2.0/keys", app.tenant), None)
        .await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // A rotated secret stops the old one from getting tokens.
    let rotated: serde_json::Value = serde_json::from_str(&b.cli(&[
        "apps",
        "rotate-secret",
        "--client-id",
        &app.client_id,
        "--json",
    ]))
    .unwrap();
    let resp = s
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", s.url, app.tenant))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("scope", &format!("{}/.default", s.url)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let mut fresh = app.clone();
    fresh.secret = rotated["clientSecret"].as_str().unwrap().to_owned();
    s.token(&fresh).await;
}
