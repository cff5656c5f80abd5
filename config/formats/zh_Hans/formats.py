"""Chinese dates as Django writes them, with the zone named beside times (the server keeps UTC)."""

DATETIME_FORMAT = "Y年n月j日 G:i T"
SHORT_DATETIME_FORMAT = "Y/m/d G:i T"
