"""Files in other encodings than UTF-8: the `encoding` option of the file and container sources."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from pipeline.sources.lines import LineSplitter, RawLine
from pipeline.sources.transcode import TranscodingSplitter, Utf16LineSplitter, check_encoding, line_splitter
from tests.unit.sources.harness import file_config, run_once

CHINESE = ["用户登录失败：密码错误", "订单 #42 已创建", "支付超时，重试第 3 次"]  # noqa: RUF001 (real Chinese punctuation)


def split_all(splitter: LineSplitter | Utf16LineSplitter | TranscodingSplitter, data: bytes,
              sizes: list[int]) -> list[RawLine]:
    """Feed `data` in chunks of the given sizes (cycled), then flush."""
    out: list[RawLine] = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.extend(splitter.feed(data[i:i + n]))
        i += n
        k += 1
    last = splitter.flush()
    if last is not None:
        out.append(last)
    return out


class TestUtf16Splitter:
    @pytest.mark.parametrize("big_endian", [False, True])
    def test_lines_and_offsets_are_the_same_for_every_chunking(self, big_endian: bool) -> None:
        codec = "utf-16-be" if big_endian else "utf-16-le"
        text = "".join(line + "\n" for line in CHINESE) + "tail"
        data = text.encode(codec)
        expected = None
        for sizes in ([1], [2], [3], [5, 1], [len(data)]):
            lines = split_all(Utf16LineSplitter(1000, 0, big_endian), data, sizes)
            assert [raw.decode(codec) for raw, *_ in lines] == [*CHINESE, "tail"]
            assert lines[-1][2] == len(data)
            expected = expected or lines
            assert lines == expected

    def test_a_newline_byte_inside_a_character_does_not_end_the_line(self) -> None:
        # U+0A41 then U+0100 in UTF-16LE: 41 0A 00 01 holds b"\n\x00" at an odd offset.
        text = "a\u0a41\u0100b\nnext\n"
        lines = split_all(Utf16LineSplitter(1000, 0, False), text.encode("utf-16-le"), [1])
        assert [raw.decode("utf-16-le") for raw, *_ in lines] == ["a\u0a41\u0100b", "next"]

    def test_a_long_line_is_cut_on_a_unit_boundary_and_skipped_to_its_end(self) -> None:
        data = ("x" * 50 + "\nafter\n").encode("utf-16-le")
        for sizes in ([1], [3], [7], [len(data)]):
            lines = split_all(Utf16LineSplitter(21, 0, False), data, sizes)
            assert [(raw.decode("utf-16-le"), start, end, cut) for raw, start, end, cut in lines] == [
                ("x" * 10, 0, 102, True), ("after", 102, 114, False)]


class TestTranscoding:
    @pytest.mark.parametrize("encoding", ["gb18030", "gbk", "big5", "shift_jis", "euc-kr", "utf-16le"])
    def test_text_comes_out_as_utf8_whatever_the_chunk_boundaries(self, encoding: str) -> None:
        sample = {"big5": ["使用者登入失敗", "訂單已建立"], "shift_jis": ["ログイン失敗", "注文を作成しました"],
                  "euc-kr": ["로그인 실패", "주문이 생성되었습니다"]}.get(encoding, CHINESE)
        data = "".join(line + "\n" for line in sample).encode(encoding)
        for sizes in ([1], [2], [3], [len(data)]):
            lines = split_all(line_splitter(None, 0, 1 << 20, check_encoding(encoding)), data, sizes)
            assert [raw.decode() for raw, *_ in lines] == sample
            assert [end for _, _, end, _ in lines][-1] == len(data)  # offsets are the file's bytes

    def test_invalid_bytes_become_a_byte_the_framer_replaces(self) -> None:
        # 0x81 0x20 is not a GBK character: one replacement, and the rest of the line kept.
        lines = split_all(line_splitter(None, 0, 1 << 20, "gbk"), "前".encode("gbk") + b"\x81 end\n", [64])
        assert lines[0][0].decode("utf-8", "replace") == "前\ufffd end"
        with pytest.raises(UnicodeDecodeError):
            lines[0][0].decode()

    def test_a_byte_order_mark_at_the_start_decides_utf16_and_is_dropped(self, tmp_path: Path) -> None:
        p = tmp_path / "be.log"
        p.write_bytes(codecs.BOM_UTF16_BE + "一\n二\n".encode("utf-16-be"))
        import os

        fd = os.open(p, os.O_RDONLY)
        try:
            resumed = line_splitter(fd, 6, 1000, "utf-16")  # resuming mid-file still reads the BOM
            assert [raw.decode() for raw, *_ in split_all(resumed, p.read_bytes()[6:], [4])] == ["二"]
        finally:
            os.close(fd)
        fresh = line_splitter(None, 0, 1000, "utf-16")  # no fd: the first bytes fed are sniffed
        assert [raw.decode() for raw, *_ in split_all(fresh, p.read_bytes(), [1])] == ["一", "二"]

    def test_unknown_and_unsupported_encodings_are_refused(self) -> None:
        assert check_encoding("GB18030") == "gb18030" and check_encoding("latin-1") == "iso8859-1"
        with pytest.raises(ValueError, match="unknown encoding"):
            check_encoding("klingon")
        with pytest.raises(ValueError, match="not supported"):
            check_encoding("utf-32")


class TestFileSource:
    async def test_gb18030_multiline_records_are_joined_and_decoded(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        text = ("2026-12-01 10:00:00 ERROR 支付失败\n"
                "Traceback (most recent call last):\n"
                '  File "支付.py", line 3, in <module>\n'
                "ValueError: 金额无效\n"
                "2026-12-01 10:00:01 INFO 订单完成\n")
        p.write_bytes(text.encode("gb18030"))
        cfg = file_config(include=[str(p)], encoding="gb18030", read_chunk_bytes=7,
                          multiline={"pattern": r"^\d{4}-", "negate": True, "match": "after"})
        h = await run_once(cfg, data_dir)
        lines = text.splitlines()
        assert h.messages() == ["\n".join(lines[:4]), lines[4]]
        assert h.offsets() == {str(p): p.stat().st_size}

    async def test_undecodable_bytes_are_replaced_and_tagged_never_dropped(self, logs: Path, data_dir: Path) -> None:
        p = logs / "mixed.log"
        p.write_bytes("好\n".encode("big5") + b"bad \xff\xff end\r\n" + "好\n".encode("big5"))
        h = await run_once(file_config(include=[str(p)], encoding="big5"), data_dir)
        assert h.messages() == ["好", "bad \ufffd\ufffd end", "好"]
        assert [e.get("tags") for e in h.events] == [None, ["_invalid_utf8"], None]

    async def test_utf16_with_a_bom_and_crlf(self, logs: Path, data_dir: Path) -> None:
        p = logs / "win.log"
        p.write_bytes(codecs.BOM_UTF16_LE + "服务启动\r\n服务停止\r\n".encode("utf-16-le"))
        h = await run_once(file_config(include=[str(p)], encoding="utf-16"), data_dir)
        assert h.messages() == ["服务启动", "服务停止"]
        assert h.events[1]["source"]["offset"] == 2 + 12

    def test_a_bad_encoding_is_a_config_error_naming_the_key(self, tmp_path: Path) -> None:
        from pipeline.config import load_config
        from pipeline.errors import ConfigError

        cfg = tmp_path / "bad.yaml"
        cfg.write_text('sources:\n  a: {type: file, include: ["/x/*.log"], encoding: utf-32}\n'
                       "sinks:\n  out: {type: blackhole, inputs: [a]}\n")
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert any("sources.a.encoding" in p and "utf-32" in p for p in err.value.problems)


class TestContainerSource:
    async def test_cri_lines_of_a_container_writing_gbk_are_decoded(self, logs: Path, data_dir: Path) -> None:
        from tests.unit.sources.harness import container_config

        p = logs / "app.log"
        p.write_bytes("2024-05-14T09:12:03.481923456Z stdout P 部分\n".encode("gbk")
                      + "2024-05-14T09:12:03.481923457Z stdout F 完成\n".encode("gbk")
                      + "2024-05-14T09:12:04.000000000Z stderr F 错误\n".encode("gbk"))
        h = await run_once(container_config(include=[str(p)], encoding="gbk"), data_dir)
        assert h.messages() == ["部分完成", "错误"]
        assert [e["stream"] for e in h.events] == ["stdout", "stderr"]
