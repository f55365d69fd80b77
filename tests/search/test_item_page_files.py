"""An item's page lists its files as the package page does: paths without data/, digests on demand, an
"open" link only for a file the browser may show, and a link to the package folder that holds them."""

from __future__ import annotations

import re
from urllib.parse import quote

from ..access.conftest import login
from .world_items import BINARY_FILE, TEXT_FILE

OPEN_DOI = "10.1000/open/with/slashes/files/x"


def test_an_items_files_open_or_download_with_digests_on_demand(client, library):
    login(client, "alice")
    page = client.get(f"/portal/items/{OPEN_DOI}")
    assert page.status_code == 200
    opened = re.findall(r'class="file-open" data-path="([^"]+)">([^<]+)<', page.text)
    assert opened == [(TEXT_FILE, TEXT_FILE.removeprefix("data/"))]  # plain text opens; the .bin does not
    downloads = re.findall(r'class="file-link" data-path="([^"]+)" download>', page.text)
    assert sorted(downloads) == sorted([TEXT_FILE, BINARY_FILE])
    assert len(re.findall(r"<summary>Show digest</summary><span class=\"digest\">SHA-256 checksum: <code>[0-9a-f]{64}",
                          page.text)) == 2
    assert f'href="/portal/packages/' in page.text and f'?path={quote("articles", safe="")}"' in page.text
    inline = client.get(f"/portal/packages/{library.world.packages['open']}/files/{quote(TEXT_FILE)}")
    assert inline.headers["content-disposition"].startswith("inline;") 
    assert inline.headers["content-type"] == "text/plain; charset=utf-8"  # its bytes are UTF-8
