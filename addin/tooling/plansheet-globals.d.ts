// What the add-in's own scripts put on the page's global object, for the type checks.
declare var PlansheetFunctions: any;
declare var PlansheetTaskpane: any;
