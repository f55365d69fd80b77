"""Jobs held by the process that enqueued them (an inline ingest): no worker claims them meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest

from preservation.catalog.models import Job, utcnow
from preservation.errors import JobError
from preservation.jobs import claim as claims
from preservation.jobs import queue

from ..fixtures import make_repo
from ..processes import wait_until


@pytest.fixture
def hrepo(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url=catalog_url)
    try:
        yield repo
    finally:
        repo.close()


def _held(repo, holder: claims.Holder, count: int = 1) -> list[claims.Claim]:
    with repo.catalog.session() as s:
        return [claims.hold(s, queue.enqueue(s, "effect", {"n": i}), holder) for i in range(count)]


def _job(repo, job_id: int) -> Job:
    with repo.catalog.session() as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


def test_a_held_job_is_never_claimed_by_a_worker_until_its_holder_lets_go(hrepo):
    holder = claims.Holder(claims.new_lease_owner(), timedelta(minutes=5), "ingest")
    (claim,) = _held(hrepo, holder)
    assert claims.claim_next(hrepo.catalog, "worker", timedelta(seconds=30), agent="w") is None
    assert claims.complete(hrepo.catalog, claim, {"inline": True}, agent="ingest")
    job = _job(hrepo, claim.job_id)
    assert (job.state, job.attempts, job.lease_owner) == (queue.SUCCEEDED, 1, None)


def test_the_keeper_renews_the_lease_while_the_holder_works(hrepo):
    holder = claims.Holder(claims.new_lease_owner(), timedelta(seconds=0.3), "ingest")
    (claim,) = _held(hrepo, holder)
    first = _job(hrepo, claim.job_id).lease_expires_at
    with claims.LeaseKeeper(hrepo.catalog, holder, [claim]):
        wait_until(lambda: _job(hrepo, claim.job_id).lease_expires_at > first, 30, 0.05, "a renewal")
        assert claims.claim_next(hrepo.catalog, "worker", timedelta(seconds=30), agent="w", now=first) is None


def test_an_interrupted_holder_hands_its_unfinished_jobs_to_the_workers_at_once(hrepo):
    holder = claims.Holder(claims.new_lease_owner(), timedelta(minutes=5), "ingest")
    done, unfinished = _held(hrepo, holder, 2)
    with pytest.raises(KeyboardInterrupt):
        with claims.LeaseKeeper(hrepo.catalog, holder, [done, unfinished]) as keeper:
            assert claims.complete(hrepo.catalog, done, {}, agent="ingest")
            keeper.finished(done)
            raise KeyboardInterrupt
    assert _job(hrepo, done.job_id).state == queue.SUCCEEDED
    taken = claims.claim_next(hrepo.catalog, "worker", timedelta(seconds=30), agent="w", now=utcnow())
    assert taken is not None and taken.job_id == unfinished.job_id and taken.attempt == 1


def test_only_a_new_job_can_be_held(hrepo):
    holder = claims.Holder(claims.new_lease_owner(), timedelta(minutes=5), "ingest")
    with hrepo.catalog.session() as s:
        job = queue.enqueue(s, "effect", {})
        claims.hold(s, job, holder)
        with pytest.raises(JobError):
            claims.hold(s, job, holder)
