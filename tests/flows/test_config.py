import pytest

from flows.config import ConfigError, PipelineConfig, load_config, parse_override


def test_defaults_resolve_and_hash_is_stable():
    a, b = load_config(), load_config(preset="default")
    assert isinstance(a, PipelineConfig)
    assert a.hash() == b.hash()


def test_layers_apply_in_order_preset_file_override(tmp_path):
    user = tmp_path / "ferv.yaml"
    user.write_text("storage:\n  root: from-file\n")
    assert str(load_config(user_file=user).storage.root) == "from-file"
    cfg = load_config(user_file=user, overrides=["storage.root=from-flag"])
    assert str(cfg.storage.root) == "from-flag"


def test_storage_paths_hang_off_the_root(tmp_path):
    cfg = load_config(overrides=[f"storage.root={tmp_path}"])
    assert cfg.storage.catalog_dir == tmp_path / "catalog"
    assert cfg.storage.crops_dir.parent == tmp_path


def test_storage_location_does_not_change_the_hash(tmp_path):
    assert load_config().hash() == load_config(overrides=[f"storage.root={tmp_path}"]).hash()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense: {a: 1}\n", "nonsense"),
        ("storage:\n  rooot: x\n", "storage.rooot"),
        ("storage: [1, 2\n", "not valid YAML"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_bad_user_file_names_file_and_key(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(user_file=path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets: .*default"):
        load_config(preset="nope")


def test_missing_user_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(user_file=tmp_path / "missing.yaml")


def test_override_syntax():
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("nokey")


@pytest.mark.parametrize(
    "override, key",
    [
        ("segment.max_len=.inf", "segment.max_len"),
        ("segment.min_len=.nan", "segment.min_len"),
        ("subsample.prior={Happy: .nan, Sad: 1}", "subsample.prior"),
        ("subsample.factor=.inf", "subsample.factor"),
        ("face_filter.budget_factor=.inf", "face_filter.budget_factor"),
        ("face_filter.rules=[{name: max_yaw, threshold: .nan}]", "face_filter.rules.0.threshold"),
        ("crawl.max_duration_s=.inf", "crawl.max_duration_s"),
        ("annotate.gold_fraction=.nan", "annotate.gold_fraction"),
        ("assets.timeout_s=.inf", "assets.timeout_s"),
    ],
)
def test_non_finite_numbers_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"override .*: {key}.*finite number"):
        load_config(overrides=[override])


def test_every_section_refuses_non_finite_floats():
    """One policy for all sections: a section that forgot it would accept .inf somewhere."""
    from pydantic import BaseModel

    from data_catalog.section import Section

    def sections(model):
        yield model
        for field in model.model_fields.values():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from sections(field.annotation)

    models = list(sections(PipelineConfig))
    assert len(models) > 10
    for model in models:
        assert issubclass(model, Section), model
        assert model.model_config.get("allow_inf_nan") is False, model


@pytest.mark.parametrize("target", [0, -3])
def test_a_scene_target_below_one_clip_is_rejected(target):
    with pytest.raises(ConfigError, match=r"subsample.targets: .*at least 1 clip.*DailyLife"):
        load_config(overrides=[f"subsample.targets={{DailyLife: {target}}}"])


def test_a_binary_config_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(ConfigError, match=rf"{path}: not a text file .*expected a YAML config"):
        load_config(user_file=path)
