"""The web UI in a real browser against a real node: log in, build a small data center
through the wizards, create a VM, stop it and watch its state change without a reload,
see a failed action's error code and description, filter a list and keep the filter over
a reload, and read the flow trace of the VM's create job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from simulator import Simulator
from tests.e2e.conftest import ADMIN_PASSWORD
from tests.support.api_client import ApiClient
from zstackpy.node.node import ManagementNode

HOST_IP = "10.90.0.1"
BS_IP = "10.90.0.254"


def base_of(node: ManagementNode) -> str:
    assert node.http is not None
    return f"http://127.0.0.1:{node.http.port}"


async def log_in(page: Page, node: ManagementNode, password: str = ADMIN_PASSWORD) -> None:
    await page.goto(base_of(node) + "/")
    await page.fill("input[name=account]", "admin")
    await page.fill("input[name=password]", password)
    await page.click("form.login button[type=submit]")


async def choose(page: Page, field: str, *names: str) -> None:
    """Select the options of ``select[name=field]`` whose text starts with each name."""
    values = []
    for name in names:
        option = page.locator(f"select[name={field}] option", has_text=re.compile(f"^{name} "))
        values.append(await option.first.get_attribute("value") or "")
    await page.select_option(f"select[name={field}]", values)


async def wizard(page: Page, resource: str, steps: list[dict[str, str | list[str]]]) -> str:
    """Open ``#/<resource>/new``, fill each step (text inputs by value, selects of other
    resources by name: a list for a multiple select), create; answer the new UUID."""
    await page.click(f"nav a[data-nav={resource}]")
    await page.click("a.button.primary")
    for index, fields in enumerate(steps):
        for name, value in fields.items():
            control = page.locator(f"[name={name}]")
            await control.wait_for()
            if isinstance(value, list):
                await choose(page, name, *value)
            elif await control.evaluate("el => el.tagName") == "SELECT":
                fixed = page.locator(f"select[name={name}] option[value='{value}']")
                if await fixed.count():
                    await page.select_option(f"select[name={name}]", value)
                else:
                    await choose(page, name, value)
            else:
                await control.fill(value)
        last = index == len(steps) - 1
        await page.click("button.create" if last else "button.next")
    await page.wait_for_url(re.compile(rf"#/{resource}/[0-9a-f]{{32}}$"), timeout=30_000)
    return page.url.rsplit("/", 1)[1]


async def build_datacenter(page: Page) -> None:
    await wizard(page, "zones", [{"name": "web-zone"}])
    await wizard(page, "clusters", [{"name": "web-cluster", "zoneUuid": "web-zone"}])
    await wizard(
        page,
        "hosts",
        [
            {
                "name": "web-host",
                "managementIp": HOST_IP,
                "clusterUuid": "web-cluster",
                "password": "password",
            }
        ],
    )
    await expect(page.locator("h1 .badge[data-state=Connected]")).to_be_visible()
    await wizard(
        page,
        "primary-storage",
        [
            {"name": "web-ps", "url": "/zstack_ps", "zoneUuid": "web-zone"},
            {"clusterUuid": "web-cluster"},
        ],
    )
    await wizard(
        page,
        "backup-storage",
        [
            {"name": "web-bs", "hostname": BS_IP, "password": "password"},
            {"zoneUuid": "web-zone"},
        ],
    )
    await wizard(
        page,
        "images",
        [
            {
                "name": "web-image",
                "url": "http://images.example/web.qcow2?size=1073741824",
                "backupStorageUuids": ["web-bs"],
            }
        ],
    )
    await expect(page.locator("h1 .badge[data-state=Ready]")).to_be_visible()
    await wizard(
        page,
        "l2-networks",
        [{"name": "web-l2", "zoneUuid": "web-zone"}, {"clusterUuid": "web-cluster"}],
    )
    await wizard(
        page,
        "l3-networks",
        [{"name": "web-l3", "l2NetworkUuid": "web-l2"}, {"networkCidr": "192.168.50.0/24"}],
    )
    await expect(page.locator("tr[data-field=ipRanges]")).to_have_count(0)  # shown as a table
    await wizard(
        page, "instance-offerings", [{"name": "web-small", "cpuNum": "1", "memoryGiB": "1"}]
    )


async def vm_state(page: Page) -> str:
    return await page.locator("h1 .badge").first.inner_text()


@pytest.mark.timeout(240)
async def test_operator_runs_a_vm_in_the_browser(
    node: ManagementNode, sim: Simulator, admin: ApiClient, page: Page, screenshots: Path
) -> None:
    # --- log in: a wrong password shows the API's error, the right one the dashboard
    await log_in(page, node, password="wrong")
    await expect(page.locator(".login .error-code")).to_have_text(re.compile(r"^ID\.\d+$"))
    await page.screenshot(path=screenshots / "login.png")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("form.login button[type=submit]")
    await expect(page.locator("[data-count=zones] .card-count")).to_have_text("0")

    # --- a data center through the wizards, then a VM
    await build_datacenter(page)
    await page.click("nav a[data-nav=vm-instances]")
    await page.click("a.button.primary")
    await page.fill("[name=name]", "web-vm")
    await choose(page, "imageUuid", "web-image")
    await page.click("button.next")
    await choose(page, "instanceOfferingUuid", "web-small")
    await page.click("button.next")
    await choose(page, "l3NetworkUuids", "web-l3")
    await page.click("button.next")
    # slow enough to watch: the jobs panel shows the flow the create is in
    sim.set_fault(HOST_IP, "/vm/start", delay=1.5)
    summary = page.locator("table.summary")
    await expect(summary.locator("tr[data-field=imageUuid]")).to_contain_text("web-image")
    await expect(summary.locator("tr[data-field=l3NetworkUuids]")).to_contain_text("web-l3")
    await page.screenshot(path=screenshots / "vm-wizard.png")
    await page.click("button.create")
    progress = page.locator("#jobs li.job[data-label='Create VM web-vm'] .job-step")
    await expect(progress).to_contain_text("start-vm-on-hypervisor")
    await page.screenshot(path=screenshots / "job-progress.png")
    await page.wait_for_url(re.compile(r"#/vm-instances/[0-9a-f]{32}$"), timeout=30_000)
    sim.clear_faults(HOST_IP)
    vm_uuid = page.url.rsplit("/", 1)[1]
    await expect(page.locator("h1 .badge").first).to_have_text("Running")
    await expect(page.locator("[data-related=vm-nics] tbody tr")).to_have_count(1)
    await expect(page.locator("[data-related=volumes] tbody tr")).to_have_count(1)
    await expect(page.locator("[data-related=hosts] tbody tr")).to_have_count(1)
    # referenced resources are shown by name once looked up
    await expect(page.locator("tr[data-field=imageUuid] a")).to_have_text("web-image")
    await expect(page.locator("[data-related=volumes] td[data-field=vmInstanceUuid]")).to_have_text(
        "web-vm"
    )
    await page.screenshot(path=screenshots / "vm-detail.png")

    # --- stop it: confirmed first, and the page follows without a reload
    await page.evaluate("window.__noReload = true")
    await page.click("button[data-action=Stop]")
    await page.click("dialog.modal button.ok")
    await expect(page.locator("h1 .badge").first).to_have_text("Stopped", timeout=20_000)
    assert await page.evaluate("window.__noReload") is True
    await expect(page.locator("button[data-action=Start]")).to_be_visible()

    # --- a failed action: the API's code and description, and the real state after it
    sim.set_fault(HOST_IP, "/vm/start", fail="qemu: could not open disk")
    await page.click("button[data-action=Start]")
    error = page.locator(".last-error .error")
    await expect(error.locator(".error-code")).to_have_text(re.compile(r"^[A-Z]+\.\d+$"))
    await expect(error.locator(".error-description")).to_contain_text("could not open disk")
    await expect(page.locator("#jobs .job .error-description").first).to_contain_text(
        "could not open disk"
    )
    assert await vm_state(page) == "Stopped"
    await page.screenshot(path=screenshots / "failed-action.png")
    sim.clear_faults(HOST_IP)

    # --- a change made by another client shows up through the event stream
    answer = await admin.action(f"/vm-instances/{vm_uuid}/actions", "startVmInstance", {})
    assert answer.status == 200, answer.body
    await expect(page.locator("h1 .badge").first).to_have_text("Running", timeout=20_000)
    assert await page.evaluate("window.__noReload") is True

    # --- the flow trace of the create job, from the jobs panel
    await page.locator("#jobs li.job[data-label='Create VM web-vm'] a.trace-link").click()
    await expect(page.locator("section.trace[data-chain=vm-create]")).to_be_visible()
    for step in ("resolve-vm-create", "allocate-vm-host", "start-vm-on-hypervisor"):
        row = page.locator(f"section.trace[data-chain=vm-create] tr[data-step={step}]")
        await expect(row).to_have_attribute("data-outcome", "done")
    await page.screenshot(path=screenshots / "flow-trace.png")

    # --- a create that fails: the wizard shows the error, the trace what was rolled back
    sim.set_fault(HOST_IP, "/vm/start", fail="qemu: no bootable device")
    await page.click("nav a[data-nav=vm-instances]")
    await page.click("a.button.primary")
    await page.fill("[name=name]", "doomed-vm")
    await choose(page, "imageUuid", "web-image")
    await page.click("button.next")
    await choose(page, "instanceOfferingUuid", "web-small")
    await page.click("button.next")
    await choose(page, "l3NetworkUuids", "web-l3")
    await page.click("button.next")
    await page.click("button.create")
    await expect(page.locator("form.wizard .error-description")).to_contain_text(
        "no bootable device", timeout=30_000
    )
    sim.clear_faults(HOST_IP)
    await page.locator("#jobs li.job[data-label='Create VM doomed-vm'] a.trace-link").click()
    failed = page.locator("section.trace[data-chain=vm-create]")
    await expect(failed.locator("tr[data-step=start-vm-on-hypervisor]")).to_have_attribute(
        "data-outcome", "failed"
    )
    await expect(failed.locator("tr[data-step=allocate-vm-host]")).to_have_attribute(
        "data-outcome", "rolled-back"
    )
    await expect(failed.locator("tr[data-step=finish-vm-create]")).to_have_attribute(
        "data-outcome", "skipped"
    )
    await expect(failed.locator("tr[data-error-of=start-vm-on-hypervisor]")).to_contain_text(
        "no bootable device"
    )
    await page.screenshot(path=screenshots / "flow-trace-rollback.png")

    # --- filter a list; the filter is in the URL and survives a reload
    await admin.inventory("/zones", {"name": "other-zone"})
    await page.click("nav a[data-nav=vm-instances]")
    await page.select_option("select[name=state]", "Running")
    await page.fill("input[name=search]", "web")
    await page.click("form.toolbar button[type=submit]")
    await expect(page).to_have_url(re.compile(r"search=web"))
    assert "state=Running" in page.url
    await page.click("th[data-field=name]")
    await expect(page).to_have_url(re.compile(r"sort=%2Bname"))
    await page.reload()
    # the jobs panel is kept over the reload too
    await expect(page.locator("#jobs li.job[data-label='Create VM web-vm']")).to_be_visible()
    await expect(page.locator("input[name=search]")).to_have_value("web")
    await expect(page.locator("select[name=state]")).to_have_value("Running")
    await expect(page.locator("table.grid tbody tr[data-name=web-vm]")).to_have_count(1)
    await page.screenshot(path=screenshots / "vm-list.png")
    await page.select_option("select[name=state]", "Stopped")
    await expect(page.locator(".results")).to_have_attribute("data-total", "0")

    # --- the dashboard counts what was built, and draws it
    await page.click("nav a[href='#/']")
    await expect(page.locator("[data-count=zones] .card-count")).to_have_text("2")
    await expect(page.locator("[data-count=vm-instances] .card-count")).to_have_text("1")
    await expect(page.locator("[data-chart='VMs by state'] li[data-label=Running]")).to_be_visible()
    await page.screenshot(path=screenshots / "dashboard.png")


async def test_list_follows_the_event_stream(
    node: ManagementNode, admin: ApiClient, page: Page
) -> None:
    await log_in(page, node)
    await page.click("nav a[data-nav=zones]")
    await expect(page.locator(".results")).to_have_attribute("data-total", "0")
    zone = await admin.inventory("/zones", {"name": "from-elsewhere"})
    await expect(page.locator(f"tr[data-uuid='{zone['uuid']}']")).to_be_visible()
    await admin.delete(f"/zones/{zone['uuid']}")
    await expect(page.locator(f"tr[data-uuid='{zone['uuid']}']")).to_have_count(0)


async def test_an_expired_session_leads_back_to_the_login_page(
    node: ManagementNode, admin: ApiClient, page: Page
) -> None:
    await log_in(page, node)
    await expect(page.locator(".cards")).to_be_visible()
    browser_session = await page.evaluate("sessionStorage.getItem('zstack.session')")
    answer = await admin.request("DELETE", f"/accounts/sessions/{browser_session}")
    assert answer.status == 200, answer.body
    await page.click("nav a[data-nav=hosts]")
    await expect(page.locator("form.login")).to_be_visible()
    await log_in(page, node)
    await expect(page.locator(".cards")).to_be_visible()
