#!/usr/bin/env python3
"""Screenshots of the admin in headless Chromium, for docs/screenshots/.

    python3 scripts/admin-screenshots.py          # ~1 min with a warm debug build

Builds and starts the local app on a throwaway SQLite database and a free port, fills it
through its own API and pages (a superuser from `createsuperuser`, sign-ups, verifications,
classes, a booking, every job run once with "Run now", one account deactivated), then signs in
as the superuser in Chromium (through chromedriver's WebDriver API) and saves each admin page.
Everything shown is what the app did; nothing is written to the database behind its back.

Needs Debian's chromium and chromium-driver (installed with apt when missing) and Python's
standard library only.
"""

import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ADMIN = "admin@example.com"
PASSWORD = "correct horse battery staple"
PAGES = [
    ("admin-overview.png", "/admin"),
    ("admin-users.png", "/admin/users"),
    ("admin-outbox.png", "/admin/emails"),
    ("admin-jobs.png", "/admin/jobs"),
]
PHONE = "home-phone.png"
PHONE_WIDTH = 390


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(url, what, process=None):
    for _ in range(300):
        if process is not None and process.poll() is not None:
            sys.exit(f"error: {what} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"error: {what} did not start")


class Browser:
    """The few WebDriver commands we need."""

    def __init__(self, driver):
        self.driver = driver
        status, answer = call("POST", f"{driver}/session", {
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,900",
                             "--hide-scrollbars"],
                },
            }},
        })
        if status != 200:
            sys.exit(f"error: chromedriver refused a session: {answer}")
        self.session = f"{driver}/session/{answer['value']['sessionId']}"

    def command(self, method, path, body=None):
        status, answer = call(method, f"{self.session}{path}", body)
        if status != 200:
            sys.exit(f"error: WebDriver {method} {path}: {answer}")
        return answer["value"]

    def go(self, url):
        self.command("POST", "/url", {"url": url})

    def find(self, css):
        element = self.command("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(element.values()))

    def type(self, css, text):
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css):
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def page(self):
        return self.command("GET", "/source")

    def screenshot(self, path, width=1280, before=None):
        # The page's full height at this width, so nothing is cut off; `before` is clicked
        # once the width is set (the phone menu shows only on a narrow page).
        self.command("POST", "/window/rect", {"width": width, "height": 900})
        if before:
            self.click(before)
        height = self.command("POST", "/execute/sync", {
            "script": "return document.documentElement.scrollHeight;", "args": []})
        self.command("POST", "/window/rect", {"width": width, "height": max(900, height + 140)})
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))

    def close(self):
        call("DELETE", self.session)


def main():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("installing chromium and chromium-driver (Debian packages)", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/starter/target"))
    subprocess.run(["cargo", "build", "-q", "-p", "local"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": target})
    binary = Path(target) / "debug" / "local"
    work = Path(tempfile.mkdtemp())
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite://{work}/app.db", "PORT": str(port),
           "SITE_URL": site, "SUPERUSER_PASSWORD": PASSWORD, "LOG_LEVEL": "warn"}
    for name in ("WORKER_QUEUE_URL", "EMAIL_BACKEND", "ALLOWED_HOSTS"):
        env.pop(name, None)
    subprocess.run([binary, "migrate"], env=env, check=True, cwd=work,
                   stdout=subprocess.DEVNULL)
    subprocess.run([binary, "createsuperuser", "--email", ADMIN, "--no-input"], env=env,
                   check=True, cwd=work, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([binary], env=env, cwd=work, stdout=subprocess.DEVNULL)
    driver_port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"{site}/healthz", "the app", server)
        wait_for(f"http://127.0.0.1:{driver_port}/status", "chromedriver", driver)
        seed(site, work / "app.db")
        OUT.mkdir(parents=True, exist_ok=True)
        browser = Browser(f"http://127.0.0.1:{driver_port}")
        try:
            browser.go(f"{site}/login")
            browser.type("input[name=email]", ADMIN)
            browser.type("input[name=password]", PASSWORD)
            browser.click("main form button[type=submit]")
            for job in ("process-occurrences", "sweep-outbox", "purge-expired"):
                browser.go(f"{site}/admin/jobs")
                browser.click(f"form[action='/admin/jobs/{job}/run'] button")
            browser.go(f"{site}/admin/users?q=lee")
            browser.click("tbody a")
            browser.click("main details summary")
            browser.click("main details form button")
            for name, path in PAGES:
                browser.go(f"{site}{path}")
                if "Log out" not in browser.page():
                    sys.exit(f"error: {path} was not shown to the signed-in superuser")
                browser.screenshot(OUT / name)
                print(f"wrote {(OUT / name).relative_to(ROOT)}")
            # The home page on a phone, its menu open.
            browser.go(f"{site}/")
            browser.screenshot(OUT / PHONE, width=PHONE_WIDTH, before="details.nav-menu summary")
            print(f"wrote {(OUT / PHONE).relative_to(ROOT)}")
        finally:
            browser.close()
    finally:
        driver.terminate()
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def seed(site, database):
    """Accounts (some verified through their emailed link), classes and a booking."""
    people = ["ada.lovelace", "alan.turing", "grace.hopper", "tim.lee", "barbara.liskov",
              "edsger.dijkstra", "margaret.hamilton"]
    for person in people:
        status, answer = call("POST", f"{site}/api/auth/signup",
                              {"email": f"{person}@example.com", "password": PASSWORD})
        assert status == 202, answer
    time.sleep(1)  # the in-process worker sends the verification emails
    with sqlite3.connect(database) as db:
        rows = db.execute("select to_address, body_text from emails where kind = 'verify_email'")
        links = {to: re.search(r"token=([0-9a-f]{64})", text).group(1) for to, text in rows}
    for person in people[:5]:
        status, answer = call("POST", f"{site}/api/auth/verify",
                              {"token": links[f"{person}@example.com"]})
        assert status == 200, answer
    status, answer = call("POST", f"{site}/api/auth/token", {"email": ADMIN, "password": PASSWORD})
    assert status == 201, answer
    admin = {"authorization": f"Bearer {answer['token']}"}
    tomorrow = time.strftime("%Y-%m-%dT07:30:00Z", time.gmtime(time.time() + 86400))
    for title, recurrence in [("Morning yoga", "daily"), ("Strength circuit", "weekly"),
                              ("Open swim", "none")]:
        status, answer = call("POST", f"{site}/api/classes", {
            "title": title, "starts_at": tomorrow, "duration_minutes": 60, "capacity": 12,
            "recurrence": recurrence, "location": "Studio 1"}, admin)
        assert status == 201, answer
    status, answer = call("POST", f"{site}/api/auth/token",
                          {"email": "ada.lovelace@example.com", "password": PASSWORD})
    ada = {"authorization": f"Bearer {answer['token']}"}
    status, classes = call("GET", f"{site}/api/classes", headers=ada)
    first = classes["results"][0]["id"]
    status, occurrences = call("GET", f"{site}/api/classes/{first}/occurrences", headers=ada)
    status, answer = call("POST",
                          f"{site}/api/occurrences/{occurrences['results'][0]['id']}/booking",
                          {}, ada)
    assert status == 201, answer


if __name__ == "__main__":
    main()
