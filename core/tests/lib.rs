mod rfc5545;
