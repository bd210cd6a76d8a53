"""The gallery page: every turn with its image, prompt, state, latency, cost and verdicts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.producer.conftest import commit_turn
from tests.producer.web.conftest import ACME, GLOBEX, MakeClient, bearer, create, services_of


def gallery_link(client: TestClient, sid: str, token: str = ACME) -> str:
    doc = client.get(f"/v1/sessions/{sid}", headers=bearer(token)).json()
    parts = urlsplit(doc["urls"]["gallery"])
    return f"{parts.path}?{parts.query}"


def test_the_signed_link_shows_every_turn_with_its_prompt_and_image(client: TestClient) -> None:
    sid = create(client)
    services = services_of(client)
    commit_turn(services, sid, 1)
    result = commit_turn(services, sid, 2)
    metrics = {"ssim": 0.41, "aligned": 1.0, "scale": 1.1, "shift": 0.0, "rotation_deg": 0.0}
    record = result.model_copy(update={"metrics": metrics | {"aspect": 1.0}})
    services.repo.store.put(
        f"sessions/{sid}/turns/0002/result.json", record.model_dump_json().encode()
    )

    page = client.get(gallery_link(client, sid))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "nonce-" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "a room" in html and "paint it sage" in html
    images = re.findall(r'<img src="([^"]+)"[^>]*data-turn="(\d)"', html)
    assert [n for _, n in images] == ["1", "2"]
    assert '<dt>drift</dt><dd><span class="verdict verdict-weak" title="scale">weak</span>' in html
    assert "scale 1.100" in html
    assert "1.5 s" in html and "$0.0670" in html
    for src, _ in images:
        image = client.get(src.replace("&amp;", "&").replace("http://testserver", ""))
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def test_a_running_session_page_polls_its_status_json(client: TestClient) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)

    html = client.get(gallery_link(client, sid)).text
    poll = re.search(r'data-status-url="([^"]+)"', html)

    assert 'data-state="running"' in html
    assert poll is not None
    status = client.get(poll.group(1).replace("&amp;", "&").replace("http://testserver", ""))
    assert status.status_code == 200
    assert [t["state"] for t in status.json()["turns"]] == ["succeeded", "queued"]
    assert status.json()["turns"][0]["image_url"].startswith(
        f"http://testserver/ui/sessions/{sid}/"
    )


def test_a_tampered_or_foreign_link_does_not_open(client: TestClient) -> None:
    sid = create(client)
    theirs = create(client, GLOBEX)
    link = gallery_link(client, sid)

    assert client.get(link.replace("sig=", "sig=x")).status_code == 403
    assert client.get(f"/ui/sessions/{sid}").status_code == 403
    assert client.get(gallery_link(client, theirs, GLOBEX).replace(theirs, sid)).status_code == 403
    assert client.get(f"/ui/sessions/{theirs}", headers=bearer(ACME)).status_code == 404


def test_the_open_api_needs_no_link(make_client: MakeClient) -> None:
    client = make_client(tokens=None)
    sid = client.post("/v1/sessions", json={"turns": [{"prompt": "a room"}]}).json()["session_id"]

    assert "a room" in client.get(f"/ui/sessions/{sid}").text
