"""The operations page's bar charts: the scale, the bars' places and their titles."""

from __future__ import annotations

from api.console.charts import MAX_BAR, bar_chart, nice_step


def test_the_value_axis_steps_by_whole_round_numbers_and_covers_the_largest_value() -> None:
    assert [nice_step(v) for v in (0, 0.5, 1, 1.2, 3, 7, 12, 99, 101)] == [1, 1, 1, 2, 5, 10, 20, 100, 200]
    chart = bar_chart(["a", "b"], ["x"], [[3], [13]])
    assert [t.text for t in chart.ticks] == ["0", "5", "10", "15", "20"]
    assert max(b.height for b in chart.bars) < chart.plot_bottom


def test_bars_stand_in_their_group_with_their_figure_in_their_title() -> None:
    chart = bar_chart(["Tuần 1", "Tuần 2"], ["Khiếu nại", "Tố cáo"], [[2, 0], [1, 4]])
    assert len(chart.bars) == 4 and [g.text for g in chart.groups] == ["Tuần 1", "Tuần 2"]
    assert chart.bars[3].label == "Tuần 2 — Tố cáo: 4" and chart.bars[1].height == 0
    assert chart.bars[0].x < chart.bars[1].x < chart.bars[2].x < chart.groups[1].x < chart.bars[3].x + MAX_BAR
    assert all(b.width <= MAX_BAR for b in chart.bars)
    assert [name for name, _ in chart.legend] == ["Khiếu nại", "Tố cáo"] and chart.legend[0][1] != chart.legend[1][1]


def test_a_rate_is_drawn_out_of_a_hundred() -> None:
    chart = bar_chart(["Nam Sách"], ["Đúng hạn"], [[50.0]], percent=True)
    assert chart.ticks[-1].text == "100%" and chart.bars[0].label.endswith("50%")
    assert abs(chart.bars[0].height * 2 - (chart.plot_bottom - 10)) < 1


def test_nothing_to_draw_draws_nothing() -> None:
    assert bar_chart([], ["x"], []).bars == []
