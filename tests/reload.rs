//! SIGHUP on a real `idsync serve`: a valid change of connectors and mappings is swapped in
//! without a restart (a new SCIM tenant answers, the admin API lists the new connector and
//! schedule), an invalid one is refused and logged while the old configuration keeps
//! serving, and a change only a restart applies is named in the log.

use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Node, Tree, eventually_with, get_json};

fn hang_up(node: &Node) {
    // SAFETY: kill(2) with a live child's pid and a valid signal number.
    let sent = unsafe { libc::kill(node.pid(), libc::SIGHUP) };
    assert_eq!(sent, 0, "kill -HUP");
}

fn connector<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["id"] == id)
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_in_a_valid_configuration_and_refuses_an_invalid_one() {
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    // The Keycloak connector is never reached: its schedule does not fire during the test.
    let tree = Tree::new(&url, "http://127.0.0.1:9", "0 0 1 1 *");
    let client = tree.client();
    let node = Node::start(&tree, "reload");
    let nodes = [&node];
    eventually_with(Duration::from_secs(20), "/readyz", &nodes, async || {
        get_json(&client, &format!("{}/readyz", node.admin)).await
    })
    .await;
    let entra = node.scim.replace("/scim/okta/", "/scim/entra/");
    assert_eq!(status_of(&format!("{entra}/Users")).await, 404);
    healthcheck_answers(&node.admin);

    // A new SCIM tenant with a mapping of its own, and another schedule for `kc`.
    tree.write(
        "mappings/strict.toml",
        "on_remove = \"delete\"\nmax_deletes = 3\n",
    );
    tree.write(
        "connectors/entra.toml",
        "kind = \"scim\"\nmapping = \"strict\"\n",
    );
    let kc = std::fs::read_to_string(tree.path("connectors/kc.toml")).expect("kc");
    tree.write("connectors/kc.toml", &kc.replace("0 0 1 1 *", "0 0 1 6 *"));
    hang_up(&node);
    let list = eventually_with(
        Duration::from_secs(10),
        "the reloaded connectors",
        &nodes,
        async || {
            let list = get_json(&client, &format!("{}/api/connectors", node.admin)).await?;
            connector(&list, "entra").is_some().then_some(list)
        },
    )
    .await;
    assert_eq!(
        connector(&list, "entra").expect("entra")["mapping"],
        "strict"
    );
    let kc_now = connector(&list, "kc").expect("kc");
    assert_eq!(kc_now["schedule"], "0 0 1 6 *");
    // The scheduler re-planned `kc`: its next run is on the 1st of June.
    let next = kc_now["next_run"].as_str().expect("next_run");
    assert!(next.contains("-06-01T00:00:00"), "{next}");
    // The new tenant exists (it asks for credentials instead of not being found); the old
    // one still does, on the same listener.
    assert_eq!(status_of(&format!("{entra}/Users")).await, 401);
    assert_eq!(status_of(&format!("{}/Users", node.scim)).await, 401);

    // An invalid change is refused as a whole: neither the broken connector nor the
    // schedule written next to it is taken.
    tree.write("connectors/broken.toml", "kind = \"no-such-kind\"\n");
    tree.write("connectors/kc.toml", &kc.replace("0 0 1 1 *", "0 0 1 9 *"));
    hang_up(&node);
    eventually_with(
        Duration::from_secs(10),
        "the refusal in the log",
        &nodes,
        async || {
            node.log()
                .contains("configuration reload refused; the node keeps running")
                .then_some(())
        },
    )
    .await;
    assert!(node.log().contains("broken.toml"), "{}", node.log());
    let list = get_json(&client, &format!("{}/api/connectors", node.admin))
        .await
        .expect("connectors");
    assert!(connector(&list, "broken").is_none(), "{list}");
    assert_eq!(connector(&list, "kc").expect("kc")["schedule"], "0 0 1 6 *");
    assert_eq!(status_of(&format!("{entra}/Users")).await, 401);

    // Fixed and reloaded again: the tenant removed, and a restart-only setting named.
    std::fs::remove_file(tree.path("connectors/broken.toml")).expect("rm");
    std::fs::remove_file(tree.path("connectors/entra.toml")).expect("rm");
    let toml = std::fs::read_to_string(tree.path("idsync.toml")).expect("idsync.toml");
    tree.write(
        "idsync.toml",
        &toml.replace("shutdown_grace_seconds = 5", "shutdown_grace_seconds = 6"),
    );
    hang_up(&node);
    eventually_with(
        Duration::from_secs(10),
        "the tenant removed",
        &nodes,
        async || (status_of(&format!("{entra}/Users")).await == 404).then_some(()),
    )
    .await;
    eventually_with(
        Duration::from_secs(10),
        "the restart-only warning",
        &nodes,
        async || {
            let log = node.log();
            (log.contains("takes effect only after a restart") && log.contains("[scheduler]"))
                .then_some(())
        },
    )
    .await;
    let list = get_json(&client, &format!("{}/api/connectors", node.admin))
        .await
        .expect("connectors");
    assert_eq!(connector(&list, "kc").expect("kc")["schedule"], "0 0 1 9 *");

    // Three hang-ups later the node is still the same process and stops cleanly.
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

/// `idsync healthcheck` (the container image's probe): 0 for a ready node, 1 for a port
/// nobody listens on; it reads no configuration (none exists at the path given).
fn healthcheck_answers(admin: &str) {
    let probe = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_idsync"))
            .args([
                "--config",
                "/nonexistent/idsync.toml",
                "healthcheck",
                "--url",
                url,
            ])
            .env_remove("IDSYNC_CONFIG")
            .output()
            .expect("run idsync healthcheck")
    };
    let ready = probe(&format!("{admin}/readyz"));
    assert_eq!(ready.status.code(), Some(0), "{ready:?}");
    assert!(String::from_utf8_lossy(&ready.stdout).starts_with("ready"));
    let closed = format!("http://127.0.0.1:{}/readyz", crate::daemon::free_port());
    let down = probe(&closed);
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("not ready"));
}
