"""`m7guard audit`: run the checks over an inventory and write one results file."""
