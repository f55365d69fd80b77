"""A library reads a package's payload only: its BagIt tag files are not found for it, through the API and the
portal, exactly as a file the package does not hold; staff are served them."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import login, make_client
from .test_api import grant

TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt")
MISSING = "data/no-such-file.txt"


def _routes(pid, path):
    return (f"/api/v1/packages/{pid}/files/{quote(path)}", f"/portal/packages/{pid}/files/{quote(path)}")


@pytest.mark.parametrize("tag_file", TAG_FILES)
def test_a_reader_with_a_grant_is_told_a_tag_file_does_not_exist(world, tag_file):
    pid = world.packages["dark"]
    with make_client(world) as api, make_client(world) as portal:
        grant(api, world, "dark", user="alice")
        assert login(portal, "alice").status_code == 303
        for url, missing_url in zip(_routes(pid, tag_file), _routes(pid, MISSING)):
            client, headers = (api, world.auth("alice")) if url.startswith("/api/") else (portal, {})
            got, missing = client.get(url, headers=headers), client.get(missing_url, headers=headers)
            assert got.status_code == missing.status_code == 404, url
            assert got.text.replace(tag_file, "X") == missing.text.replace(MISSING, "X"), url
            assert "E110" in got.text and "Payload-Oxum" not in got.text
        payload = api.get(f"/api/v1/packages/{pid}/files/data/{quote('articles/a.txt')}", headers=world.auth("alice"))
        assert payload.status_code == 200  # the grant is real: the payload is served


@pytest.mark.parametrize("tag_file", TAG_FILES)
def test_staff_are_served_tag_files(world, tag_file):
    pid = world.packages["dark"]
    with make_client(world) as api, make_client(world) as portal:
        grant(api, world, "dark", user="carol")  # staff read dark content on a grant too
        assert login(portal, "carol").status_code == 303
        for client, url, headers in ((api, _routes(pid, tag_file)[0], world.auth("carol")),
                                     (portal, _routes(pid, tag_file)[1], {})):
            got = client.get(url, headers=headers)
            assert got.status_code == 200, (url, got.text[:300])
            if tag_file == "bag-info.txt":
                assert b"Payload-Oxum:" in got.content
