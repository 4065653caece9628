"""The plain dialect's credentials through real nginx, driven with curl as
scripts do: accounts, folders and secondary passwords made by the CLI."""

import subprocess

import requests

from conftest import run_cli


def curl_form(server, path, *fields):
    args = ["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", server.url(path)]
    for field in fields:
        args += ["--data-urlencode", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body.strip()


def test_accounts_secondary_passwords_and_credential_checks(server):
    run_cli("user", "create", "alice", "--password-stdin", "--quota-mb", "100", data=server.data,
            stdin="alice primary password\n")
    folder = run_cli("user", "folder", "create", "alice", "ci", data=server.data).stdout.strip().splitlines()[-1]
    secondary = run_cli("user", "secondary", "create", "alice", "ci-runner", "--folder", folder, "--can-list",
                        data=server.data).stdout.strip().splitlines()[-1]
    assert secondary.startswith("sp_")
    listing = run_cli("user", "list", data=server.data).stdout
    assert "alice" in listing and "ci-runner" in listing and f"folder {folder}" in listing

    assert curl_form(server, "/api/cliCheckCredentials", "username=alice", "password=alice primary password") == (200, "VALID")
    assert curl_form(server, "/api/cliCheckCredentials", "username=alice", f"password={secondary}") == (200, "VALID")
    assert curl_form(server, "/api/cliCheckCredentials", "username=alice", "password=wrong") == (401, "INVALID")
    assert curl_form(server, "/api/cliCheckCredentials", "username=alice") == (400, "MISSING")

    me = requests.post(server.url("/api/getMe"), data={"username": "alice", "password": secondary}).json()
    assert me == {"ok": True, "username": "alice", "mode": "secondary", "secondaryLabel": "ci-runner",
                  "secondaryFolderScopeId": int(folder), "secondaryCanListFiles": True,
                  "secondaryCanEditFiles": False, "secondaryIsApiKey": False}
    me = requests.post(server.url("/api/getMe"), json={"username": "alice", "password": "alice primary password"}).json()
    assert me["mode"] == "primary"

    created = requests.post(server.url("/api/secondaryPasswords/createFromPrimary"),
                            data={"username": "alice", "password": "alice primary password", "label": "backup",
                                  "folderIdScope": folder, "canEditFiles": "true"})
    assert created.status_code == 200 and created.json()["canEditFiles"] is True
    assert requests.post(server.url("/api/secondaryPasswords/createFromPrimary"),
                         data={"username": "alice", "password": secondary}).status_code == 403

    run_cli("user", "secondary", "revoke", "alice", "ci-runner", data=server.data)
    assert curl_form(server, "/api/cliCheckCredentials", "username=alice", f"password={secondary}") == (401, "INVALID")
    assert run_cli("user", "secondary", "revoke", "alice", "ci-runner", data=server.data, check=False).returncode != 0
