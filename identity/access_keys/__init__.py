"""Access keys the operator issues to backend systems for the Cognito admin operations (SigV4-signed).

`identity access-keys create --name NAME --allow OPERATION[,...]` prints a key id and its secret once;
the secret is kept sealed (it signs requests, so it cannot be a one-way hash) and never shown again.
Each key may call only the operations it was granted, like an IAM policy on `cognito-idp:Admin*`.
"""
