"""Which files serve gives to its user before dropping root (unit tests, no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittiwake.config import load_domains, load_static
from kittiwake.server.privileges import PrivilegeError, RunAs, config_files, prepare_files


def test_config_files_are_the_named_ones_inside_the_config_dir(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    (conf / "tls").mkdir(parents=True)
    (conf / "tls" / "mail.crt").write_text("cert")
    (conf / "tls" / "mail.key").write_text("key")
    (conf / "unrelated.txt").write_text("not named by the config")
    outside = tmp_path / "outside.key"
    outside.write_text("key elsewhere")
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
[listeners.public]
ips = ["127.0.0.1"]
[[listeners.public.tls.certificates]]
cert_file = "tls/mail.crt"
key_file = "tls/mail.key"
[[listeners.public.tls.certificates]]
cert_file = "tls/mail.crt"
key_file = "{outside}"
""")
    files = dict(config_files(conf, load_static(conf), load_domains(conf)))
    assert files == {(conf / "kittiwake.conf").resolve(): False,
                     (conf / "domains.conf").resolve(): False,
                     (conf / "tls" / "mail.crt").resolve(): False,
                     (conf / "tls" / "mail.key").resolve(): True}


@pytest.mark.parametrize("data_dir", ["/", "/var"])
def test_a_data_dir_that_is_not_its_own_is_refused(tmp_path: Path, data_dir: str) -> None:
    with pytest.raises(PrivilegeError, match="is not a directory of its own"):
        prepare_files(Path(data_dir), tmp_path, RunAs("nobody", 65534, 65534), [])
