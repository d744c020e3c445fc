"""Looks at deploy local's page in headless Chromium (Debian's chromium and chromedriver,
driven by selenium) and prints what a person would see, as JSON, for tests/local.rs to check.
Every host but 127.0.0.1 is unreachable. Screenshots go to OUT_DIR.

usage: browser.py BASE_URL OUT_DIR PLAN_JSON
PLAN_JSON: {"failed": "/executions/m/x", "running": "/executions/m/y", "hostile": "/executions/m/z",
            "machine": "/machines/m"}
"""
import json, os, sys, tempfile, time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

base, out_dir, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.makedirs(out_dir, exist_ok=True)
options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("DEPLOY_CHROMIUM", "/usr/bin/chromium")
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,1500",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             f"--user-data-dir={tempfile.mkdtemp()}"]:
    options.add_argument(flag)
service = Service(executable_path=os.environ.get("DEPLOY_CHROMEDRIVER", "/usr/bin/chromedriver"))
driver = webdriver.Chrome(service=service, options=options)
driver.set_page_load_timeout(30)
seen = {"resources": []}


def screenshot(shot):
    """Kept for people to look at; a screenshot the browser refuses once is tried again."""
    for attempt in range(3):
        try:
            driver.save_screenshot(os.path.join(out_dir, shot + ".png"))
            return
        except WebDriverException as e:
            print(f"screenshot {shot}, attempt {attempt + 1}: {e.msg}", file=sys.stderr)
            time.sleep(0.3)


def visit(path, shot):
    driver.get(base + path)
    screenshot(shot)
    seen["resources"] += driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")


def texts(css):
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


try:
    visit(plan["running"], "running-execution")
    driver.execute_script("window.__still_this_page = true")
    first = driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status")
    deadline = time.time() + 60
    last = first
    while time.time() < deadline:
        last = driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status")
        if last != "RUNNING":
            break
        time.sleep(0.2)
    screenshot("running-execution-done")
    seen["running"] = {"first": first, "last": last,
                       "reloaded": not driver.execute_script("return window.__still_this_page === true"),
                       "stop_button": len(driver.find_elements(By.ID, "stop"))}
    visit(plan["stoppable"], "stoppable-execution")
    driver.execute_script("window.__still_this_page = true")
    button = driver.find_element(By.ID, "stop")
    button.send_keys("\n")  # by keyboard: the button takes focus and Enter presses it
    deadline = time.time() + 30
    while time.time() < deadline and driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status") == "RUNNING":
        time.sleep(0.1)
    seen["stopped"] = {"status": driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status"),
                       "reloaded": not driver.execute_script("return window.__still_this_page === true")}

    visit(plan["redrivable"], "redrivable-execution")
    driver.execute_script("window.__still_this_page = true")
    before = driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status")
    driver.find_element(By.ID, "redrive").send_keys("\n")
    deadline = time.time() + 30
    statuses = []
    while time.time() < deadline:
        now = driver.find_element(By.CSS_SELECTOR, "#live").get_attribute("data-status")
        if not statuses or statuses[-1] != now:
            statuses.append(now)
        if now == "SUCCEEDED":
            break
        time.sleep(0.1)
    screenshot("redriven-execution")
    seen["redriven"] = {"before": before, "statuses": statuses,
                        "reloaded": not driver.execute_script("return window.__still_this_page === true"),
                        "redrive_button": len(driver.find_elements(By.ID, "redrive")),
                        "note": texts("#live .status .redriven"),
                        "events": texts("table.events tbody td:nth-child(2)")}

    visit("/", "index")
    seen["index"] = {"machines": texts("tbody td:first-child a"), "badges": texts("tbody .badge")}

    visit(plan["machine"], "machine")
    seen["machine"] = {"executions": texts("table.executions tbody td:first-child a"),
                       "statuses": texts("table.executions .badge")}
    driver.get(base + plan["machine"] + "?status=FAILED")
    seen["machine"]["failed_only"] = texts("table.executions tbody td:first-child a")

    visit(plan["failed"], "failed-execution")
    seen["failed"] = {
        "status": driver.find_element(By.CSS_SELECTOR, "#live .status .badge").text,
        "nodes": [e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "svg g.node")],
        "failed_nodes": [e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "svg g.node[data-mark=failed]")],
        "states": {r.get_attribute("data-state"): r.find_elements(By.TAG_NAME, "td")[3].text
                   for r in driver.find_elements(By.CSS_SELECTOR, "table.states tbody tr")},
        "errors": texts("table.states td.error"),
        "events": len(driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr")),
        "local_time": driver.execute_script(
            "const t = document.querySelector('time'); return new Date(t.getAttribute('datetime')).toLocaleString() === t.textContent"),
    }

    visit(plan["hostile"], "hostile-execution")
    seen["hostile"] = {
        "ran": driver.execute_script("return window.__pwned === 1"),
        "state_names": [r.get_attribute("data-state") for r in driver.find_elements(By.CSS_SELECTOR, "table.states tbody tr")],
        "shown": texts("table.states tbody td:first-child"),
    }

    seen["resources"] = sorted(set(seen["resources"]))
finally:
    driver.quit()
print(json.dumps(seen))
