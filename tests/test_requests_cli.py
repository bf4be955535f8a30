"""``python -m clinic_assistant requests ...`` as staff run it, against a real SQLite file."""

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    due_deliveries,
    get_request,
    mark_attempt_failed,
    mark_delivered,
    submit_consultation,
)
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=timezone.utc)
FAR = T0 + timedelta(days=3650)


def a_request(name: str, phone: str, email=None) -> ConsultationRequest:
    return ConsultationRequest(
        conversation_id=f"visitor-{uuid.uuid4().hex}",
        channel="rest",
        name=name,
        phone=phone,
        email=email,
        help_with="Swelling and burning in my foot\nsince surgery",
        best_times="Afternoons",
        consent_to_contact=True,
        consent_at=T0,
    )


@pytest.fixture
def clinic(tmp_path):
    """Three requests: delivered (oldest), failing, new (newest)."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    engine = engine_for(url)
    delivered = submit_consultation(engine, a_request("Ana Lima", "+14155552671", "ana@example.org"), T0)
    failing = submit_consultation(engine, a_request("Ben Okafor", "+12025550143"), T0 + timedelta(minutes=1))
    new = submit_consultation(engine, a_request("Cleo Park", "+16175550123"), T0 + timedelta(minutes=2))
    entries = {entry.reference: entry for entry in due_deliveries(engine, T0 + timedelta(minutes=5))}
    mark_delivered(engine, entries[delivered].id, T0 + timedelta(minutes=3))
    mark_attempt_failed(engine, entries[failing].id, "HTTP 503: down for maintenance", FAR)
    return url, engine, {"delivered": delivered, "failing": failing, "new": new}


def requests_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = process_environment({"CLINIC_DATABASE_URL": url, "CLINIC_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    return subprocess.run(
        [sys.executable, "-m", "clinic_assistant", "requests", *args],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60,
    )


def test_list_shows_a_table_newest_first(clinic):
    url, _, refs = clinic
    result = requests_cli(url, "list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["REFERENCE", "CREATED", "STATUS", "DELIVERY", "NAME"]
    assert [row.split()[0] for row in rows] == [refs["new"], refs["failing"], refs["delivered"]]
    assert "new" in rows[0] and "pending (0)" in rows[0] and rows[0].endswith("Cleo Park")
    assert "failed (1)" in rows[1] and rows[1].endswith("Ben Okafor")
    assert "delivered (1)" in rows[2] and rows[2].endswith("Ana Lima")
    assert "2024-05-01" in rows[2]


def test_list_filters_by_status_and_says_when_there_is_none(clinic):
    url, _, refs = clinic
    result = requests_cli(url, "list", "--status", "delivered")
    assert [row.split()[0] for row in result.stdout.splitlines()[1:]] == [refs["delivered"]]
    result = requests_cli(url, "list", "--status", "contacted")
    assert (result.returncode, result.stdout.strip()) == (0, "No consultation requests with status contacted.")
    result = requests_cli(url, "list", "--status", "lost")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_list_json_has_every_field(clinic):
    url, _, refs = clinic
    result = requests_cli(url, "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [item["reference"] for item in listed] == [refs["new"], refs["failing"], refs["delivered"]]
    failing = listed[1]
    assert failing["name"] == "Ben Okafor" and failing["phone"] == "+12025550143" and failing["email"] is None
    assert (failing["status"], failing["delivery_status"], failing["attempts"]) == ("new", "failed", 1)
    assert failing["last_error"] == "HTTP 503: down for maintenance"
    assert datetime.fromisoformat(failing["next_attempt_at"]) == FAR
    assert datetime.fromisoformat(failing["created_at"]) == T0 + timedelta(minutes=1)
    assert failing["consent_to_contact"] is True and datetime.fromisoformat(failing["consent_at"]) == T0
    assert datetime.fromisoformat(listed[2]["delivered_at"]) == T0 + timedelta(minutes=3)


def test_show_prints_one_request_and_accepts_a_lower_case_reference(clinic):
    url, _, refs = clinic
    result = requests_cli(url, "show", refs["delivered"].lower())
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line and line[0] != " ")
    assert fields["Reference"].strip() == refs["delivered"]
    assert fields["Name"].strip() == "Ana Lima" and fields["Phone"].strip() == "+14155552671"
    assert fields["Email"].strip() == "ana@example.org" and fields["Status"].strip() == "delivered"
    assert "Help with:    Swelling and burning in my foot\n              since surgery\n" in result.stdout
    as_json = json.loads(requests_cli(url, "show", refs["failing"], "--json").stdout)
    assert as_json["reference"] == refs["failing"] and as_json["last_error"] == "HTTP 503: down for maintenance"


def test_mark_contacted_changes_the_status(clinic):
    url, engine, refs = clinic
    result = requests_cli(url, "mark-contacted", refs["delivered"])
    assert (result.returncode, result.stdout.strip()) == (0, f"{refs['delivered']} marked as contacted.")
    stored = get_request(engine, refs["delivered"])
    assert stored.status == "contacted" and stored.contacted_at is not None
    assert [row.split()[0] for row in requests_cli(url, "list", "--status", "contacted").stdout.splitlines()[1:]] == [
        refs["delivered"]
    ]


def test_retry_makes_undelivered_requests_due_now(clinic):
    url, engine, refs = clinic
    soon = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert {entry.reference for entry in due_deliveries(engine, soon)} == {refs["new"]}
    result = requests_cli(url, "retry", refs["failing"])
    assert (result.returncode, result.stdout.strip()) == (0, "1 delivery due now.")
    assert {entry.reference for entry in due_deliveries(engine, soon)} == {refs["new"], refs["failing"]}
    result = requests_cli(url, "retry")
    assert (result.returncode, result.stdout.strip()) == (0, "2 deliveries due now.")
    result = requests_cli(url, "retry", refs["delivered"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"{refs['delivered']} has no delivery waiting: it was delivered."


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["mark-contacted"], ["retry"]])
def test_an_unknown_reference_exits_1_with_a_message(clinic, command):
    url, _, _ = clinic
    result = requests_cli(url, *command, "CR-ZZZZ")
    assert result.returncode == 1
    assert result.stderr.strip() == "No consultation request CR-ZZZZ" and not result.stdout


def test_an_unmigrated_database_is_a_clear_error(tmp_path):
    result = requests_cli(f"sqlite:///{tmp_path / 'empty.db'}", "list")
    assert result.returncode == 1 and result.stderr.startswith("Clinic database unavailable:")


def test_control_characters_a_visitor_typed_cannot_reach_the_terminal(clinic):
    url, engine, _ = clinic
    request = a_request("Eve\x1b[2J\x07 Stone", "+18502314567")
    reference = submit_consultation(engine, request, T0 + timedelta(minutes=9))
    listed = requests_cli(url, "list").stdout
    shown = requests_cli(url, "show", reference).stdout
    assert "\x1b" not in listed + shown and "\x07" not in listed + shown
    assert "Eve?[2J? Stone" in listed and "Eve?[2J? Stone" in shown
    assert json.loads(requests_cli(url, "show", reference, "--json").stdout)["name"] == request.name  # JSON escapes
