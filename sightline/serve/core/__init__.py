"""What every request of the app shares: settings, guards (token, hosts, CSRF, body limits),
error answers and the offline API docs."""
