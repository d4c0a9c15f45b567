"""The seed's log phrases (issue 14): monitoring written from the original tool's documentation watches the log
for "Batch processing completed", "Failed to get AtHoc authentication token" and "Error parsing CSV file"."""
from datetime import datetime, timedelta

from testsite import Site

STAMP = (datetime.now() - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")


def test_the_seed_phrases_appear_in_the_log_where_they_apply(sim, tmp_path):
    """Rule: monitoring written from the seed's documentation keeps matching: "Batch processing completed" after
    a batch, "Error parsing CSV file" for a file with a row that cannot be read and for a bad file, "Failed to
    get AtHoc authentication token" when the token is refused, each in the log file."""
    site = Site(sim, tmp_path)
    site.write("good.csv", [site.ev("BON", "10001", STAMP)])
    site.run()
    assert "INFO    bobosync: Batch processing completed: 1 file(s) done, 0 to retry, 0 set aside" in site.log()
    assert "Error parsing CSV file" not in site.log() and "Failed to get AtHoc" not in site.log()
    good = site.ev("BOF", "10002", STAMP).row
    site.write_text("mixed.csv", good + "\r\nBON,10003,P1,not-a-date,070000,,1,,,\r\n")
    site.write_text("bad.csv", "BON,10001,too,few\r\n")
    site.run(expect=(3,))
    log = site.log()
    assert "WARNING bobosync: Error parsing CSV file mixed.csv: 1 row(s) rejected (listed above), 1 valid" in log
    assert "WARNING bobosync: Error parsing CSV file bad.csv: 1 row(s) rejected (listed above), 0 valid" in log
    site.configure(PASSWORD="not-the-password")
    site.write("later.csv", [site.ev("BOF", "10001", STAMP)])
    site.run(expect=(3,))
    assert "ERROR   bobosync: Failed to get AtHoc authentication token. AtHoc cannot be reached: authentication: " \
           "AtHoc refused the service account" in site.log()
