from sync_service.sheets_fake import *  # noqa: F403 - the Sheets API stand-in moved into the package
