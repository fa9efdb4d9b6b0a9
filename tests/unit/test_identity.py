"""The identity and storage rules that keep searches apart (``orchestrator.identity``), the seal
of the evaluation cache (``orchestrator.trust``), and the checkpoint's owner."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.errors import ConfigError
from orchestrator.identity import (
    SearchIdentity,
    claim,
    confine,
    foreign_location,
    job_name,
    search_prefix,
)
from orchestrator.loop.checkpoint import encode, read, stored_owner, stored_spec
from orchestrator.spec import SearchSpec
from orchestrator.trust import Trust, cache_scope, key_from_env, local_key, seal

ROOT = "s3://bucket/searches"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_the_short_hash_differs_with_each_part_of_the_identity() -> None:
    base = SearchIdentity("s1", "uid-1", "team-a")
    others = [SearchIdentity("s1", "uid-2", "team-a"), SearchIdentity("s1", "uid-1", "team-b"),
              SearchIdentity("s2", "uid-1", "team-a"), SearchIdentity("s1", "uid-1")]
    assert len({base.short, *(o.short for o in others)}) == 5
    assert re.fullmatch(r"[0-9a-f]{8}", base.short)
    assert SearchIdentity("s1", "uid-1", "team-a").short == base.short  # stable


@pytest.mark.parametrize("launch", ["t00003", "p00016", "t100000"])
def test_job_names_are_dns_labels_of_at_most_63_characters_even_for_the_longest_names(
        launch: str) -> None:
    name = "a" * 39 + "z"  # search names are at most 40 characters
    me = SearchIdentity(name, "0b1e6f5a-3c2d-4e5f-8a9b-0c1d2e3f4a5b", "some-namespace")
    job = job_name(me, f"{name}-{launch}")
    assert len(job) <= 63 and DNS_LABEL.match(job)
    assert job == f"{name}-{me.short}-{launch}"
    again = job_name(SearchIdentity(name, "another-uid", "some-namespace"), f"{name}-{launch}")
    assert again != job  # an object re-created under the same name gets other Jobs


def test_a_checkpoint_is_own_unclaimed_or_foreign_by_its_uid() -> None:
    me = SearchIdentity("s1", "uid-1", "ns")
    assert claim(me, me) == "own"
    assert claim(SearchIdentity("s1", "uid-1", "ns"), me) == "own"
    assert claim(None, me) == "unclaimed"
    assert claim(SearchIdentity("s1", "uid-0", "ns"), me) == "foreign"
    assert SearchIdentity.from_dict(me.as_dict()) == me
    assert SearchIdentity.from_dict(None) is None and SearchIdentity.from_dict({"name": "x"}) is None


def test_a_search_without_storage_uri_gets_its_own_prefix() -> None:
    assert confine(None, ROOT, "team-a", "s1") == "s3://bucket/searches/team-a/s1"
    assert confine(None, ROOT + "/", "team-a", "s1") == search_prefix(ROOT, "team-a", "s1")


@pytest.mark.parametrize("uri", ["s3://bucket/searches/team-a/s1", "s3://bucket/searches/team-a/s1/",
                                 "s3://bucket/searches/team-a/s1/run-2"])
def test_a_storage_uri_at_or_below_its_prefix_is_kept(uri: str) -> None:
    assert confine(uri, ROOT, "team-a", "s1") == uri.rstrip("/")


@pytest.mark.parametrize("uri", [
    "s3://bucket/searches/team-a/victim",              # another search of the namespace
    "s3://bucket/searches/team-b/s1",                  # the same name in another namespace
    "s3://bucket/searches/team-a/s10",                 # a prefix of the name is not the name
    "s3://bucket/searches/team-a",                     # above its prefix
    "s3://bucket/searches/team-a/s1/../victim",        # climbing out
    "s3://bucket/searches/team-a/s1/./x",
    "s3://bucket/searches//team-a/s1",
    "s3://other-bucket/searches/team-a/s1",            # another bucket
    "file:///searches/team-a/s1",
    "/tmp/checkpoints",
])
def test_a_storage_uri_anywhere_else_is_refused_naming_the_field_and_the_allowed_prefix(
        uri: str) -> None:
    with pytest.raises(ConfigError) as e:
        confine(uri, ROOT, "team-a", "s1")
    text = str(e.value)
    assert text.startswith("storage.uri ") and "s3://bucket/searches/team-a/s1" in text
    assert "\n" not in text


def test_a_foreign_checkpoint_moves_a_search_into_a_folder_of_its_uid() -> None:
    me = SearchIdentity("s1", "uid-2", "team-a")
    assert foreign_location("s3://bucket/searches/team-a/s1", me) == \
        "s3://bucket/searches/team-a/s1/uid-2"


def test_a_checkpoint_records_its_owner_and_another_uid_never_resumes_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    spec = SearchSpec.model_validate({"name": "s1", "seed": 7})
    owner = SearchIdentity("s1", "uid-1", "team-a")
    store.put("controller.pt", encode(spec, {}, [], 0, owner))
    assert stored_owner(store) == (True, owner)
    saved = read(store, "s1", owner)
    assert saved is not None and saved.owner == owner
    other = SearchIdentity("s1", "uid-2", "team-a")
    with pytest.raises(ConfigError, match="belongs to another search"):
        read(store, "s1", other)
    assert stored_spec(store, "s1", other) is None  # nothing of it is told to another search
    assert stored_spec(store, "s1", owner) == spec


def test_a_checkpoint_written_before_owners_is_adopted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    spec = SearchSpec.model_validate({"name": "s1"})
    store.put("controller.pt", encode(spec, {}, [], 0))
    me = SearchIdentity("s1", "uid-1", "team-a")
    assert stored_owner(store) == (True, None)
    assert read(store, "s1", me) is not None and stored_spec(store, "s1", me) == spec


def test_a_seal_covers_the_run_the_result_and_the_namespace() -> None:
    args = ("run-1", "0123456789abcdef", "fedcba9876543210", 0.9, None)
    trust = Trust(b"k" * 32, "team-a")
    value = trust.seal(*args)
    tags = {"actsearch.namespace": "team-a"}
    assert trust.accepts(value, tags, *args, "actsearch.namespace")
    for changed in (("run-2", *args[1:]), (*args[:3], 0.91, None), (*args[:3], None, "nan")):
        assert not trust.accepts(value, tags, *changed, "actsearch.namespace")
    assert not Trust(b"k" * 32, "team-b").accepts(value, tags, *args, "actsearch.namespace")
    wide = Trust(b"k" * 32, "team-b", "installation")
    assert wide.accepts(value, tags, *args, "actsearch.namespace")
    assert not wide.accepts(value, {"actsearch.namespace": "team-b"}, *args, "actsearch.namespace")
    assert not trust.accepts(None, tags, *args, "actsearch.namespace")
    assert seal(b"k" * 32, None, *args) != seal(b"k" * 32, "team-a", *args)


def test_the_cache_scope_and_the_key_are_checked() -> None:
    assert cache_scope("installation") == "installation"
    with pytest.raises(ConfigError, match="cache scope 'cluster' is not one of namespace, installation"):
        cache_scope("cluster")
    assert key_from_env({}) is None
    assert key_from_env({"ACTSEARCH_TRUST_KEY": "x" * 20}) == b"x" * 20
    with pytest.raises(ConfigError, match="ACTSEARCH_TRUST_KEY must be at least 16"):
        key_from_env({"ACTSEARCH_TRUST_KEY": "short"})


def test_the_local_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = local_key(tmp_path / "work")
    assert len(key) == 64 and local_key(tmp_path / "work") == key
    assert os.stat(tmp_path / "work" / "trust.key").st_mode & 0o077 == 0


def test_in_a_cluster_a_child_may_not_read_the_key_and_a_search_needs_the_root() -> None:
    from orchestrator.cluster.incluster import ClusterDefaults, check_isolation

    defaults = ClusterDefaults(storage_uri=ROOT, trust_secret="actsearch-trust")
    ok = SearchSpec.model_validate({"name": "s1", "backend": {
        "kind": "kubernetes", "kubernetes": {"credentials_secret": "actsearch-s3"}}})
    check_isolation(ok, defaults, "team-a")
    bad = SearchSpec.model_validate({"name": "s1", "backend": {
        "kind": "kubernetes", "kubernetes": {"credentials_secret": "actsearch-trust"}}})
    with pytest.raises(ConfigError, match=r"backend\.kubernetes\.credentials_secret "
                                          r"'actsearch-trust' holds the controller's key"):
        check_isolation(bad, defaults, "team-a")
    with pytest.raises(ConfigError, match="the operator has no storage root"):
        check_isolation(ok, ClusterDefaults(), "team-a")


def test_a_root_the_policy_adds_confines_a_search_to_its_own_folder_there_too() -> None:
    from orchestrator.cluster.incluster import ClusterDefaults, storage_uri
    from orchestrator.cluster.policy import ChildPolicy

    defaults = ClusterDefaults(storage_uri=ROOT,
                               policy=ChildPolicy.model_validate({"storageUris": ["s3://team-bucket/ckpt"]}))

    def named(uri: str) -> SearchSpec:
        return SearchSpec.model_validate({"name": "s1", "storage": {"uri": uri}})

    assert storage_uri(named("s3://team-bucket/ckpt/team-a/s1"), defaults, "team-a") == \
        "s3://team-bucket/ckpt/team-a/s1"
    for elsewhere in ("s3://team-bucket/ckpt", "s3://team-bucket/ckpt/team-a/victim"):
        with pytest.raises(ConfigError, match=r"storage\.uri .* is outside this search's storage"):
            storage_uri(named(elsewhere), defaults, "team-a")
