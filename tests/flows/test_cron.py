"""The config's cron check: the schedules Prefect accepts pass, malformed ones fail naming the field and
what is wrong, and the config error names the scene."""

import pytest

from flows.config import load_config
from flows.cron import cron_error


@pytest.mark.parametrize(
    "cron", ["0 3 * * 0", "*/15 * * * *", "0 0 1,15 jan-jun/2 *", "30 2 * * mon-fri", "0 0 L * *", "0 9 * * 1#2",
             "0 0 * * 7", "@daily", "@weekly"],
)  # fmt: skip
def test_usual_schedules_are_valid(cron):
    assert cron_error(cron) is None


@pytest.mark.parametrize(
    ("cron", "problem"),
    [("0 3 * *", "needs 5 fields"), ("61 * * * *", "minute: 61 is out of 0-59"),
     ("0 24 * * *", "hour: 24 is out of 0-23"), ("0 0 0 * *", "day of month: 0 is out of 1-31"),
     ("0 0 * 13 *", "month: 13 is out of 1-12"), ("0 0 * * 8", "day of week: 8 is out of 0-7"),
     ("*/0 * * * *", "the step must be a positive number"), ("5-1 * * * *", "the range runs backwards"),
     ("0 0 * foo *", "'foo' is not a number or a name"), ("1,,2 * * * *", "an empty list item"),
     ("0 0 * * 1#6", "the week after '#' must be 1-5"), ("@sometimes", "needs 5 fields")],
)  # fmt: skip
def test_malformed_schedules_say_what_is_wrong(cron, problem):
    assert problem in cron_error(cron)


def test_the_config_names_the_scene_of_a_bad_schedule():
    assert load_config(overrides=["service.recrawl={DailyLife: '0 3 * * 0'}"]).service.recrawl
    with pytest.raises(
        ValueError, match=r"service.recrawl\['DailyLife'\]: '0 25 \* \* \*' is not a valid cron"
    ):
        load_config(overrides=["service.recrawl={DailyLife: '0 25 * * *'}"])
