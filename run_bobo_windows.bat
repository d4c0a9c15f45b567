@echo off
rem Runs bobosync once; for Windows Task Scheduler (run_bobo_windows.ps1 does the same in PowerShell).
rem Python: .venv\Scripts\python.exe, else "py -3", else "python". Arguments are passed through.
rem Output goes to wrapper_YYYY-MM-DD.log in LOG_DIRECTORY, read as the run reads it (bobosync\.env, the
rem environment, --env-file): "bobo_processor.py --wrapper-logs" with the run's arguments says where, and
rem deletes wrapper logs older than LOG_PURGE_DAYS days. When it cannot say, the log goes to <project>\logs.
rem Exit code: the engine's (0 done or nothing to do, 1 something left for the next run, 2 configuration
rem error, 3 a person must act).
rem Overlapping runs need no check here: the engine holds its own lock.
rem Every echo to the log has its redirection first (>>"file" echo ...): in "echo ... code 2>> file" cmd
rem reads the digit as a handle number (2>>, stderr) and the line never reaches the log. The engine's line
rem keeps it last, after a space, which no argument can join (Wine's cmd cannot start a command after 2>&1).
setlocal EnableExtensions
set "PROJECT_DIR=%~dp0"
set "ENGINE_DIR=%PROJECT_DIR%bobosync"
set "LOG_DIR=%PROJECT_DIR%logs"
set "TODAY="

set "PY_CMD="
if exist "%PROJECT_DIR%.venv\Scripts\python.exe" set PY_CMD="%PROJECT_DIR%.venv\Scripts\python.exe"
if not defined PY_CMD (
    where py >nul 2>&1 && set "PY_CMD=py -3"
)
if not defined PY_CMD (
    where python >nul 2>&1 && set "PY_CMD=python"
)
if not defined PY_CMD goto :log_ready

rem LOG_DIRECTORY=<folder> and TODAY=<date>, on standard output only when the folder is ready.
rem The command's outer quotes are for cmd /c, which for /f starts it with.
set "BOBO_WRAPPER_LOG_DIRECTORY="
set "BOBO_WRAPPER_TODAY="
pushd "%ENGINE_DIR%"
for /f "usebackq tokens=1,* delims==" %%a in (`"%PY_CMD% bobo_processor.py --wrapper-logs %* 2>nul"`) do set "BOBO_WRAPPER_%%a=%%b"
popd
if defined BOBO_WRAPPER_LOG_DIRECTORY if defined BOBO_WRAPPER_TODAY (
    set "LOG_DIR=%BOBO_WRAPPER_LOG_DIRECTORY%"
    set "TODAY=%BOBO_WRAPPER_TODAY%"
)

:log_ready
rem Without that answer: the date from PowerShell, so the name does not depend on the regional date format.
if not defined TODAY for /f "usebackq delims=" %%d in (`powershell -NoProfile -NonInteractive -Command "Get-Date -Format yyyy-MM-dd" 2^>nul`) do set "TODAY=%%d"
if not defined TODAY set "TODAY=undated"
if not exist "%LOG_DIR%" mkdir "%LOG_DIR%"
set "WRAPPER_LOG=%LOG_DIR%\wrapper_%TODAY%.log"
set "PYTHONIOENCODING=utf-8"

if not defined PY_CMD (
    >>"%WRAPPER_LOG%" echo %TODAY% %TIME% ERROR no Python found: install Python 3.9 or newer, or create .venv
    echo No Python found: install Python 3.9 or newer, or create .venv ^(windows_scheduler_setup.md^)
    exit /b 2
)

>>"%WRAPPER_LOG%" echo %TODAY% %TIME% START %PY_CMD% bobo_processor.py %*
pushd "%ENGINE_DIR%"
%PY_CMD% bobo_processor.py %* >>"%WRAPPER_LOG%" 2>&1
set "RC=%ERRORLEVEL%"
popd
>>"%WRAPPER_LOG%" echo %TODAY% %TIME% END exit code %RC%
echo bobosync exit code %RC% (output in %WRAPPER_LOG%)
exit /b %RC%
