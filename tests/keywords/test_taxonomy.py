from pathlib import Path

import pytest
import yaml

from keywords.taxonomy import TaxonomyError, UnknownSceneError, load_taxonomy

RELEASE_SCENES = [
    "Action",
    "Argue",
    "Business",
    "Conflict",
    "Contest",
    "Crime",
    "Crisis",
    "DailyLife",
    "ElegantArt",
    "Experiment",
    "History",
    "Interview",
    "Liveshow",
    "Medicine",
    "OfficialEvent",
    "ScholarReport",
    "School",
    "Social",
    "Speech",
    "Talkshow",
    "Terror",
    "War",
]


def test_packaged_taxonomy_has_the_papers_4_scenarios_and_22_release_scenes():
    tax = load_taxonomy()
    assert sorted(tax.scene_names) == sorted(RELEASE_SCENES)
    assert {code: len(tax.scenes_of(code)) for code in tax.scenarios} == {
        "DL": 6,
        "WIS": 6,
        "SIA": 6,
        "AI": 4,
    }
    assert tax.scene("Terror").scenario == "AI"
    assert tax.scene("Talkshow").scenario_name == "Weak-Interactive Shows"


def test_every_scene_has_english_and_chinese_keywords():
    for scene in load_taxonomy().scenes:
        assert scene.keywords.get("en"), scene.name
        assert scene.keywords.get("zh"), scene.name


def test_26_fine_grained_words_map_onto_the_7_expressions():
    tax = load_taxonomy()
    assert tax.expressions == ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
    assert len(tax.word_to_expression) == 26
    assert set(tax.word_to_expression.values()) == set(tax.expressions)
    assert tax.word_to_expression["horror"] == "Fear"


def test_unknown_scene_error_lists_the_valid_ones():
    with pytest.raises(UnknownSceneError) as err:
        load_taxonomy().scene("Cooking")
    assert "Cooking" in str(err.value) and "Terror" in str(err.value) and "DailyLife" in str(err.value)


def _write_scenes(tmp_path: Path, data) -> Path:
    path = tmp_path / "scenes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data)
    return path


def test_user_adds_a_scene_without_touching_code(tmp_path):
    raw = yaml.safe_load((Path(__file__).parents[2] / "keywords" / "scenes.yaml").read_text())
    raw["scenarios"][0]["scenes"].append({"name": "Cooking", "keywords": {"en": ["cooking show fail"]}})
    tax = load_taxonomy(_write_scenes(tmp_path, raw))
    assert tax.scene("Cooking").scenario == "DL"
    assert tax.scene("Cooking").all_keywords() == ["cooking show fail"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("scenarios: [unclosed", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ({"version": 1, "scenarios": [{"code": "DL", "name": "x", "scenes": [{"name": "A"}]}]}, "keywords"),
        (
            {
                "version": 1,
                "scenarios": [
                    {
                        "code": "DL",
                        "name": "x",
                        "scenes": [
                            {"name": "A", "keywords": {"en": ["a"]}},
                            {"name": "A", "keywords": {"en": ["b"]}},
                        ],
                    }
                ],
            },
            "repeated: A",
        ),
        ({"version": 1, "scenarios": [], "extra": 1}, "extra"),
    ],
)
def test_malformed_taxonomy_names_the_file_and_the_problem(tmp_path, content, message):
    path = _write_scenes(tmp_path, content)
    with pytest.raises(TaxonomyError) as err:
        load_taxonomy(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_taxonomy_file_is_a_clear_error(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "nope.yaml")
