"""The dashboard: the last month's conversations, topics, fallbacks, safety flags and requests, charted and counted."""

from datetime import datetime, timedelta, timezone

from aiohttp import web

from clinic_assistant.console import charts, keys
from clinic_assistant.console.views.common import call, clinic, page
from clinic_assistant.store import review

DAYS = 30


async def dashboard_page(request: web.Request) -> web.Response:
    now = datetime.fromtimestamp(request.app[keys.CLOCK](), timezone.utc)
    figures = await call(review.dashboard, clinic(request), DAYS, now)
    today = now.date()  # a UTC day, as every time the console shows
    daily = charts.daily_counts(figures.per_day_by_channel, today - timedelta(days=DAYS - 1), today)
    context = {
        "days": DAYS,
        "figures": figures,
        "daily": daily,
        "daily_chart": charts.daily_chart(daily),
        "topics_chart": charts.bar_chart(figures.top_intents),
    }
    return page(request, "dashboard.html", context)
