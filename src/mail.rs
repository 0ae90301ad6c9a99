//! Mails to the admins: message texts (pure) and sending (lettre, smtp or sendmail).
//! OWNER: helper "recording" (mail part). Stub to be replaced.
