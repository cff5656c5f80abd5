"""Date and time formats of the portal's languages where Django's do not suit its merchants."""
