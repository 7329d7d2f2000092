"""The file manager of `lab human --jupyter` serves only the sandbox's workdir: links the sandbox plants there
that lead outside are refused when opened and left out of listings (a listing with one must not fail, or the
expert's file browser stops working)."""

from __future__ import annotations

import asyncio
import os

import pytest
from tornado.web import HTTPError

from lab.agents.human_jupyter import _workdir_contents_class


@pytest.fixture
def contents(tmp_path):
    work = tmp_path / "work"
    (tmp_path / "secret.txt").write_text("host")
    (work / "sub").mkdir(parents=True)
    (work / "a.txt").write_text("inside")
    os.symlink("/", work / "rootfs")
    os.symlink("/etc/hostname", work / "hostlink")
    os.symlink("a.txt", work / "inlink")
    os.symlink("../..", work / "sub" / "up")
    return _workdir_contents_class()(root_dir=str(work))


def test_listing_leaves_out_links_that_lead_outside(contents):
    root = asyncio.run(contents.get(""))
    assert sorted(entry["name"] for entry in root["content"]) == ["a.txt", "inlink", "sub"]
    sub = asyncio.run(contents.get("sub"))
    assert sub["content"] == []


@pytest.mark.parametrize("path", ["rootfs", "rootfs/etc/hostname", "hostlink", "sub/up", "sub/up/secret.txt"])
def test_opening_a_link_that_leads_outside_is_not_found(contents, path):
    with pytest.raises(HTTPError) as err:
        asyncio.run(contents.get(path))
    assert err.value.status_code == 404


def test_a_link_inside_the_workdir_still_opens(contents):
    assert asyncio.run(contents.get("inlink"))["content"] == "inside"
