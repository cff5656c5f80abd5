"""English dates a European merchant cannot misread.

Django's "en" is American: 01/07/2027 is the 7th of January there and the 1st of July to a
German seller, on the page that says when buyers must pay the bank. Dates are ISO 8601 in
tables (as the portal's reasons already write them, "due on 2027-01-07") and day-month-year in
words; times are 24-hour and name their zone, as the server keeps UTC. Names not set here are
Django's.
"""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
