"""The command line built from the stage configs: every field a flag, defaults kept, bad values refused."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from app.cli import build_parser, main
from app.training_cli import chain_configs
from training.config import ConfigError, from_arguments
from training.stages.chain import config_classes, stage_config
from training.stages.dpo import DPOConfig


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def test_every_field_of_every_stage_config_is_a_flag():
    train = subcommand(build_parser(), "train")
    for stage, cls in config_classes().items():
        help_text = subcommand(train, stage).format_help()
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(getattr(cls(), f.name)):
                continue  # alignment's student config: its fields are --student-* flags (below)
            flag = "--from" if f.name == "parent" else "--" + f.name.replace("_", "-")
            assert flag in help_text, (stage, flag)
            assert f.metadata["help"], (stage, f.name)


def test_flags_not_given_keep_the_stage_defaults():
    parse = build_parser().parse_args
    assert from_arguments(DPOConfig, parse(["train", "dpo"])) == DPOConfig()
    cfg = from_arguments(DPOConfig, parse(["train", "dpo", "--no-votes", "--minutes", "3", "--from", "kd-x"]))
    assert (cfg.votes, cfg.minutes, cfg.parent, cfg.lr) == (False, 3.0, "kd-x", DPOConfig().lr)
    assert parse(["train", "all", "--no-votes"]).votes is False
    assert parse(["train", "all"]).votes is None  # the stage's default (votes in) stands


def test_train_all_builds_every_stage_config_from_its_flags():
    parse = build_parser().parse_args
    configs = chain_configs(parse(["train", "all"]))  # refused a flag the teacher lacks before 2026-12-01
    assert configs == {stage: config_classes()[stage]() for stage in ("teacher", "sft", "kd", "dpo")}
    configs = chain_configs(parse(["train", "all", "--items", "5", "--minutes", "42", "--no-votes"]))
    assert (configs["sft"].items, configs["kd"].items, configs["dpo"].votes) == (5, 5, False)
    assert configs["dpo"].items == DPOConfig().items  # DPO's sampled items are not `--items`
    assert (configs["teacher"].minutes, configs["sft"].minutes) == (6.0, 15.0)


def test_nested_student_fields_of_alignment_are_flags_too():
    cfg = from_arguments(config_classes()["align"], build_parser().parse_args(["train", "align", "--student-lora-r", "8"]))
    assert cfg.student.lora_r == 8 and cfg.student.stack == 8


def test_unknown_keys_and_values_out_of_bounds_are_refused():
    with pytest.raises(ConfigError, match="DPOConfig has no lrr"):
        stage_config("dpo", {"lrr": 1e-4})
    with pytest.raises(ConfigError, match="KDConfig.beta must be <= 1"):
        stage_config("kd", {"beta": 1.5})
    with pytest.raises(ConfigError, match="SFTConfig.minutes must be int|SFTConfig.minutes must be float"):
        stage_config("sft", {"minutes": "soon"})
    assert stage_config("sft", {"minutes": "12", "heard_answers": "false"}).minutes == 12.0


def test_a_bad_flag_value_is_one_line_on_stderr_and_exit_status_1(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "dpo", "--lr", "-1"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == "speechsum: error: DPOConfig.lr must be > 0, not -1.0"
