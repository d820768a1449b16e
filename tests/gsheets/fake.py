from sheets_standin import *  # noqa: F403 - the Sheets API stand-in, a development package (devtools/)
