"""The web UI in a real browser (Debian's Chromium through Playwright) against a real
``plait server local``: log in, write a flow in the editor, see the server's validation
problem at its line, fix it, run it with its inputs, watch it turn green live and read its logs;
approve a paused execution with its form; search flows. Screenshots of the main pages are taken
on the way (into docs/ui/ with PLAIT_UI_SCREENSHOTS=1: ``make ui-screenshots``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from live_server import LiveServer
from ui_support import PASSWORD, post

BROKEN = """id: greet
namespace: ui.tests
inputs:
  - id: name
    type: STRING
tasks:
  - id: hello
    type: plait.core.Log
    mesage: "Hello {{ inputs.name }}!"
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: done
    type: plait.core.Log
    message: "done with {{ inputs.name }}"
"""
FIXED = BROKEN.replace("mesage:", "message:")


def log_in_with_password(page: Any, live: LiveServer) -> None:
    page.goto(live.url + "/ui")
    page.get_by_label("User name", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Flows").wait_for()


def log_in_with_token(page: Any, live: LiveServer) -> None:
    page.goto(live.url + "/ui/login")
    page.get_by_role("tab", name="API token").click()
    assert live.token is not None
    page.get_by_label("API token", exact=True).fill(live.token)
    page.get_by_role("button", name="Use token").click()
    page.get_by_role("heading", name="Flows").wait_for()


def type_source(page: Any, text: str) -> None:
    editor = page.get_by_role("textbox", name="Flow YAML")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(text)


def state_badge(page: Any) -> Any:
    return page.get_by_test_id("execution-state")


def test_write_a_flow_fix_its_problem_run_it_and_follow_it_live(
    browser_page: Any, server: LiveServer, shots: Path
) -> None:
    page = browser_page
    page.goto(server.url + "/ui")
    page.get_by_role("heading", name="Log in to Plait").wait_for()
    page.screenshot(path=str(shots / "login.png"))
    log_in_with_password(page, server)

    page.get_by_role("link", name="New flow").click()
    type_source(page, BROKEN)
    page.get_by_role("button", name="Save").click()
    problems = page.get_by_role("alert").filter(has_text="problem")
    problems.get_by_text("unknown property 'mesage'").wait_for()
    # The problem is marked on the line the server named: line 9, the misspelt key.
    problems.get_by_role("button", name="line 9").wait_for()
    marked = page.locator(".cm-line", has=page.locator(".cm-lintRange-error"))
    assert "mesage" in " ".join(marked.all_inner_texts())
    page.screenshot(path=str(shots / "editor-problem.png"))

    type_source(page, FIXED)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/ui/flows/ui\.tests/greet/editor$"))
    page.get_by_text("Saved revision 1.").wait_for()
    assert page.locator(".cm-lintRange-error").count() == 0

    page.get_by_role("tab", name="Topology").click()
    page.get_by_role("figure", name="Flow topology").get_by_text("wait").wait_for()
    page.screenshot(path=str(shots / "flow-topology.png"))

    page.get_by_role("tab", name="Run").click()
    page.get_by_label("name", exact=True).fill("Ada")
    page.screenshot(path=str(shots / "flow-run.png"))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_url(re.compile(r"/ui/executions/[0-9a-z]+$"))
    execution_id = page.url.rsplit("/", 1)[1]

    # It waits in the Pause task; resumed from outside (the API), the page turns green by itself.
    state = state_badge(page)
    state.filter(has_text="PAUSED").wait_for()
    page.locator(".log").filter(has_text="Hello Ada!").wait_for()
    status, answer = post(f"{server.api}/executions/{execution_id}/resume", server.headers())
    assert status == 200, answer
    state.filter(has_text="SUCCESS").wait_for()
    page.locator(".log").filter(has_text="done with Ada").wait_for()
    assert page.locator("tr[data-task='done'] .badge").inner_text() == "SUCCESS"
    page.screenshot(path=str(shots / "execution.png"), full_page=True)

    page.get_by_label("Minimum level", exact=True).select_option("ERROR")
    page.get_by_text("0 of 2 lines").wait_for()

    page.get_by_role("link", name="Executions", exact=True).click()
    page.get_by_role("row").filter(has_text=execution_id).filter(has_text="SUCCESS").wait_for()
    page.screenshot(path=str(shots / "executions.png"))


def test_approve_a_paused_execution_with_its_form(
    browser_page: Any, server: LiveServer, shots: Path
) -> None:
    page = browser_page
    status, started = post(f"{server.api}/executions/examples/approval?wait=true", server.headers())
    assert (status, started["state"]["current"]) == (200, "PAUSED")
    log_in_with_token(page, server)
    page.goto(f"{server.url}/ui/executions/{started['id']}")

    form = page.get_by_role("form", name="Resume inputs")
    form.get_by_label("approved", exact=True).check()
    form.get_by_label("reason", exact=True).fill("looks good")
    page.screenshot(path=str(shots / "approval.png"), full_page=True)
    form.get_by_role("button", name="Resume").click()

    state_badge(page).filter(has_text="SUCCESS").wait_for()
    page.locator(".log").filter(has_text="released (looks good)").wait_for()
    assert page.get_by_role("form", name="Resume inputs").count() == 0


def test_search_flows_by_namespace_and_id(
    browser_page: Any, server: LiveServer, shots: Path
) -> None:
    page = browser_page
    log_in_with_password(page, server)
    rows = page.locator("table.list tbody tr")
    rows.first.wait_for()
    assert rows.count() > 3
    page.screenshot(path=str(shots / "flows.png"))

    page.get_by_label("Flow id", exact=True).fill("approv")
    page.get_by_text("1 flow", exact=True).wait_for()
    assert rows.all_inner_texts() == [rows.first.inner_text()]
    assert "approval" in rows.first.inner_text()
    page.get_by_label("Flow id", exact=True).fill("")
    page.get_by_label("Namespace", exact=True).fill("nowhere")
    page.get_by_text("0 flows").wait_for()

    # The address keeps the search: a reload shows the same list.
    page.reload()
    page.get_by_text("0 flows").wait_for()
    assert page.get_by_label("Namespace", exact=True).input_value() == "nowhere"


def test_keyboard_only_login_and_navigation(browser_page: Any, server: LiveServer) -> None:
    page = browser_page
    page.goto(server.url + "/ui")
    page.get_by_label("User name", exact=True).focus()
    page.keyboard.type("ada")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Flows").wait_for()
    # Every form control of the page has an accessible name.
    for control in page.locator("input, select, textarea, button").all():
        name = control.evaluate(
            "e => e.labels?.[0]?.textContent || e.getAttribute('aria-label') || e.textContent"
        )
        assert (name or "").strip(), control.evaluate("e => e.outerHTML")
    page.get_by_role("link", name="approval").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="examples.approval").wait_for()
    page.get_by_role("tab", name="Topology").focus()
    page.keyboard.press("ArrowRight")
    page.get_by_role("tab", name="Editor", selected=True).wait_for()


def test_diff_and_roll_back_a_revision(browser_page: Any, server: LiveServer, shots: Path) -> None:
    page = browser_page
    status, flow = post(f"{server.api}/flows/examples/hello", server.headers(), method="GET")
    assert status == 200, flow
    changed = flow["source"].replace("Say hello.", "Say hello twice.")
    assert changed != flow["source"]
    status, second = post(
        f"{server.api}/flows/examples/hello?revision={flow['revision']}",
        {**server.headers(), "Content-Type": "application/x-yaml"},
        changed.encode(),
        method="PUT",
    )
    assert status == 200, second
    log_in_with_token(page, server)
    page.goto(f"{server.url}/ui/flows/examples/hello/revisions")

    before, after = flow["revision"], second["revision"]
    page.get_by_role("button", name=f"Diff {before} → {after}").click()
    diff = page.get_by_label(f"Diff of revision {before} to {after}")
    diff.locator(".add").filter(has_text="Say hello twice.").wait_for()
    page.screenshot(path=str(shots / "flow-revisions.png"))
    page.get_by_role("button", name=f"Roll back to {before}").click()
    page.get_by_role("status").filter(has_text=f"Rolled back: revision {after + 1}.").wait_for()
    status, latest = post(f"{server.api}/flows/examples/hello", server.headers(), method="GET")
    assert (latest["revision"], latest["source"]) == (after + 1, flow["source"])
