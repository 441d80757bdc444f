"""SAM and CloudFormation templates, deployed onto a running Squall server (``squall deploy``)."""
