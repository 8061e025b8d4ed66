"""English dates as every page writes them: "Sep 3, 2026" and "Sep 3, 2026 14:05".

Django's own English formats mix "Sept. 3, 2026", "09/03/2026" and "2 p.m." by where a date is
shown (a template's `date` filter, a table's column, a form); one short form, with a 24-hour
clock, reads the same on a record page, in a list and in the email log. Times are shown in the
user's time zone (config.middleware.UserTimeZoneMiddleware).
"""

DATE_FORMAT = "M j, Y"
SHORT_DATE_FORMAT = "M j, Y"
DATETIME_FORMAT = "M j, Y H:i"
SHORT_DATETIME_FORMAT = "M j, Y H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "M j"
YEAR_MONTH_FORMAT = "F Y"
